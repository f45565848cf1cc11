using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Sagas;
using Runner.Sagas.Instances;
using Runner.Sagas.Partitions;

namespace Runner.Host.Instances;

/// <summary>What became of an operator's resume, skip or cancel.</summary>
internal enum ControlOutcome
{
    Applied,
    NotFound,
    Ambiguous,
    NotParked,
    NotApplied,
}

/// <summary>The outcome, the instance as its owner shows it afterwards (when known), and a sentence for the operator.</summary>
internal sealed record ControlResult(ControlOutcome Outcome, InstanceShowReply? Instance, string Message);

/// <summary>
/// Resumes, skips or cancels a parked instance. The action travels as a control message in the
/// instance's partition inbox, so the owner applies it in order with the instance's events and a
/// replica that replays the inbox later reaches the same outcome. Waits until the owner has applied
/// it and returns the instance as it then stands.
/// </summary>
internal static class InstanceControl
{
    public static async Task<ControlResult> SendAsync(
        INatsConnection nats, SagaRuntimeOptions options, string action, string saga, string key, string? tenant, TimeSpan wait, CancellationToken cancellationToken)
    {
        if (!PartitionWorker.ControlActions.Contains(action, StringComparer.Ordinal))
        {
            throw new ArgumentOutOfRangeException(nameof(action), action, "resume, skip or cancel");
        }
        var found = await InstanceLookup.ShowAsync(nats, options, saga, key, tenant, wait, cancellationToken);
        if (found.Count == 0)
        {
            return new ControlResult(ControlOutcome.NotFound, null, $"no instance {saga}/{key}{(tenant is null ? "" : $" of tenant {tenant}")} (or no replica owning its partition answered)");
        }
        if (found.Count > 1)
        {
            return new ControlResult(ControlOutcome.Ambiguous, null, $"{found.Count} tenants have an instance {saga}/{key} ({string.Join(", ", found.Select(f => f.Summary!.Tenant))}): name one");
        }
        var before = found[0];
        var summary = before.Summary!;
        if (before.Parked is not { } parked)
        {
            return new ControlResult(ControlOutcome.NotParked, before, $"{summary.Tenant}/{saga}/{key} is {summary.Status}, not parked: nothing to {action}");
        }

        // No Nats-Msg-Id: a control message is idempotent by what it does (a second resume finds
        // the instance running, or parked again on the same event), and a resume sent again after a
        // fix must not be taken for a copy of the one that failed before it.
        var headers = new NatsHeaders
        {
            [EventHeaders.Control] = action,
            [EventHeaders.TenantId] = EventHeaders.Encode(summary.Tenant),
            [EventHeaders.Saga] = EventHeaders.Encode(saga),
            [EventHeaders.Key] = EventHeaders.Encode(key),
        };
        var js = new NatsJSContext(nats);
        var ack = await js.PublishAsync(Core.Subjects.Subjects.Inbox(new PartitionId(before.Partition)), Array.Empty<byte>(), headers: headers, cancellationToken: cancellationToken);
        ack.EnsureSuccess();

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        try
        {
            while (true)
            {
                var after = await InstanceQueryClient.ShowAsync(nats, options, new InstanceShowRequest { Tenant = summary.Tenant, Saga = saga, Key = key }, wait, timeout.Token);
                if (after is not null && after.Checkpoint >= ack.Seq)
                {
                    var outcome = after.Parked is { } again && again.InboxSequence != parked.InboxSequence
                        ? $"; parked again on event {again.EventId}: {again.Reason} ({again.Detail})"
                        : after.Parked is not null ? $"; still parked ({after.Parked.Reason}: {after.Parked.Detail})" : "";
                    return new ControlResult(after.Parked is null ? ControlOutcome.Applied : ControlOutcome.NotApplied, after,
                        $"{action} of {summary.Tenant}/{saga}/{key} applied at inbox #{ack.Seq}: now {after.Summary?.Status ?? "gone"}, version {after.Summary?.Version}{outcome}");
                }
                await Task.Delay(100, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ControlResult(ControlOutcome.NotApplied, null, $"{action} of {summary.Tenant}/{saga}/{key} is in the inbox at #{ack.Seq}, but its owner had not applied it within 15 s (check runner partitions)");
        }
    }
}
