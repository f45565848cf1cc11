using System.Text.Json.Serialization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Sagas;
using Runner.Sagas.Instances;
using Runner.Sagas.Manifests;
using Runner.Sagas.Partitions;
using Runner.Sagas.Testing;

namespace Runner.Host.Instances;

/// <summary>What a reset would do, step by step, and the token that applies exactly this reset.</summary>
internal sealed record ResetPreview
{
    [JsonPropertyName("tenant")] public required string Tenant { get; init; }
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("from")] public long From { get; init; }
    [JsonPropertyName("to")] public long To { get; init; }

    /// <summary>Per replayed step, how the current script's outcome differs from what was recorded (empty: the same).</summary>
    [JsonPropertyName("steps")] public List<ResetStepPreview> Steps { get; init; } = [];
    [JsonPropertyName("state_now")] public string? StateNow { get; init; }
    [JsonPropertyName("state_after")] public string? StateAfter { get; init; }
    [JsonPropertyName("token")] public required string Token { get; init; }
}

internal sealed record ResetStepPreview(
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("event_id")] string EventId,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("differences")] List<string> Differences);

/// <summary>The preview, or why there is none; and after an apply, the instance as it then stands.</summary>
internal sealed record ResetResult(ResetPreview? Preview, string? Error, bool Applied = false, InstanceShowReply? After = null);

/// <summary>
/// A controlled reset of one instance: the dry run replays the events after the target version
/// through the current script offline and shows, step by step, what would differ from what the
/// instance did, with a token naming exactly that reset; the apply recomputes the token, refuses
/// one that no longer fits, and sends the reset as a control message in the instance's partition
/// inbox (the owner applies it in order, and a replay reaches the same outcome).
/// </summary>
internal static class InstanceReset
{
    public static async Task<ResetResult> PreviewAsync(INatsConnection nats, SagaRuntimeOptions options, ManifestSet manifests, string saga, string key, string? tenant, long to, TimeSpan wait, CancellationToken cancellationToken)
    {
        var found = await InstanceLookup.ShowAsync(nats, options, saga, key, tenant, wait, cancellationToken);
        if (found.Count != 1)
        {
            return new ResetResult(null, found.Count == 0 ? $"no instance {saga}/{key} (or its owner did not answer)" : $"{found.Count} tenants have an instance {saga}/{key}: name one");
        }
        var shown = found[0];
        var summary = shown.Summary!;
        if (shown.Parked is not null)
        {
            return new ResetResult(null, $"{summary.Tenant}/{saga}/{key} is parked: resume, skip or cancel it first");
        }
        if (manifests.Saga(saga) is not { } loaded)
        {
            return new ResetResult(null, $"saga '{saga}' is not in the manifests");
        }
        var (plan, error) = ResetPlan.Make(shown.History, summary.Version, to);
        if (plan is null)
        {
            return new ResetResult(null, $"cannot reset {summary.Tenant}/{saga}/{key}: {error}");
        }
        var steps = new List<ResetStepPreview>();
        var state = plan.StateJson;
        foreach (var step in plan.Replay)
        {
            var evt = StepEvent.FromScriptEvent(step.Event, out var unreadable);
            var outcome = evt is null ? StepOutcome.Failed("unreadable_event", unreadable!) : SagaStepper.Run(manifests, loaded, key, state, evt,
                step.Handler == "compensate" && loaded.Script.HasCompensate ? Scripting.ScriptHandler.Compensate : null);
            steps.Add(new ResetStepPreview(step.Version, step.EventId, step.Type, OutcomeComparer.Compare(StepOutcome.FromHistory(step), outcome)));
            if (outcome.Error is not null)
            {
                return new ResetResult(null, $"v{step.Version} ({step.Type} {step.EventId}) fails with the current script: {outcome.Error}: {outcome.ErrorDetail}");
            }
            state = outcome.StateJson;
        }
        return new ResetResult(new ResetPreview
        {
            Tenant = summary.Tenant,
            Saga = saga,
            Key = key,
            From = summary.Version,
            To = to,
            Steps = steps,
            StateNow = shown.State?.GetRawText(),
            StateAfter = state,
            Token = ResetPlan.Token(summary.Tenant, saga, key, summary.Version, to, loaded.Script.Hash),
        }, null);
    }

    public static async Task<ResetResult> ApplyAsync(INatsConnection nats, SagaRuntimeOptions options, ManifestSet manifests, string saga, string key, string? tenant, long to, string token, TimeSpan wait, CancellationToken cancellationToken)
    {
        var preview = await PreviewAsync(nats, options, manifests, saga, key, tenant, to, wait, cancellationToken);
        if (preview.Preview is not { } seen)
        {
            return preview;
        }
        if (!string.Equals(seen.Token, token, StringComparison.Ordinal))
        {
            return new ResetResult(seen, "the token does not fit this reset any more (the instance moved on, the script changed, or the token is from another dry run): run the dry run again");
        }
        var partition = Partitioner.PartitionOf(new InstanceId(new TenantId(seen.Tenant), new SagaName(saga), new CorrelationKey(key)), options.Partitions);
        var headers = new NatsHeaders
        {
            [EventHeaders.Control] = PartitionWorker.ResetAction,
            [EventHeaders.TenantId] = EventHeaders.Encode(seen.Tenant),
            [EventHeaders.Saga] = EventHeaders.Encode(saga),
            [EventHeaders.Key] = EventHeaders.Encode(key),
            [EventHeaders.ResetTo] = seen.To.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [EventHeaders.ResetFrom] = seen.From.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var js = new NatsJSContext(nats);
        var ack = await js.PublishAsync(Core.Subjects.Subjects.Inbox(partition), Array.Empty<byte>(), headers: headers,
            opts: new NatsJSPubOpts { MsgId = EventHeaders.Encode($"control:reset:{seen.Tenant}:{saga}:{key}:{seen.Token}") }, cancellationToken: cancellationToken);
        if (!ack.Duplicate)
        {
            // A duplicate is this very reset (its token names the instance, versions and script) sent before: its first copy's sequence stands.
            ack.EnsureSuccess();
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        try
        {
            while (true)
            {
                var after = await InstanceQueryClient.ShowAsync(nats, options, new InstanceShowRequest { Tenant = seen.Tenant, Saga = saga, Key = key }, wait, timeout.Token);
                if (after is not null && after.Checkpoint >= ack.Seq)
                {
                    // The replayed steps name the control message's inbox sequence.
                    var applied = after.History.Any(step => step.InboxSequence == ack.Seq);
                    return new ResetResult(seen, applied ? null : "the owner did not apply the reset (its log says why)", applied, after);
                }
                await Task.Delay(100, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ResetResult(seen, $"the reset is in the inbox at #{ack.Seq}, but its owner had not applied it within 15 s");
        }
    }
}

/// <summary>A reset of every live instance of a saga back to before a time: each instance's preview, and one token for them all.</summary>
internal sealed record SagaResetPreview
{
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("since")] public required string Since { get; init; }
    [JsonPropertyName("instances")] public List<ResetPreview> Instances { get; init; } = [];

    /// <summary>Instances that cannot be reset (parked, history not kept from version 1, a step that fails), with the reason.</summary>
    [JsonPropertyName("refused")] public List<string> Refused { get; init; } = [];
    [JsonPropertyName("token")] public required string Token { get; init; }
}

/// <summary>Resets every live instance of a saga to its last step processed before a time (see <see cref="InstanceReset"/>).</summary>
internal static class SagaReset
{
    public static async Task<SagaResetPreview> PreviewAsync(INatsConnection nats, SagaRuntimeOptions options, ManifestSet manifests, string saga, DateTimeOffset since, int limit, TimeSpan wait, CancellationToken cancellationToken)
    {
        var sinceMs = since.ToUnixTimeMilliseconds();
        var instances = new List<ResetPreview>();
        var refused = new List<string>();
        foreach (var status in new[] { "running", "done" })
        {
            var list = await InstanceQueryClient.ListAsync(nats, options, new InstanceFilter { Saga = saga, Status = status, Limit = limit }, wait, cancellationToken);
            foreach (var live in list.Instances)
            {
                var shown = await InstanceQueryClient.ShowAsync(nats, options, new InstanceShowRequest { Tenant = live.Tenant, Saga = saga, Key = live.Key }, wait, cancellationToken);
                if (shown is not { Found: true } || shown.History.Count == 0 || shown.History[^1].InboxMs < sinceMs)
                {
                    continue; // nothing of it ran since then
                }
                var to = shown.History.Where(step => step.InboxMs < sinceMs).Select(step => step.Version).DefaultIfEmpty(0).Max();
                var result = await InstanceReset.PreviewAsync(nats, options, manifests, saga, live.Key, live.Tenant, to, wait, cancellationToken);
                if (result.Preview is { } preview)
                {
                    instances.Add(preview);
                }
                else
                {
                    refused.Add($"{live.Tenant}/{saga}/{live.Key}: {result.Error}");
                }
            }
        }
        instances.Sort((a, b) => string.CompareOrdinal($"{a.Tenant}\u001f{a.Key}", $"{b.Tenant}\u001f{b.Key}"));
        var token = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join(",", instances.Select(i => i.Token)))))[..12];
        return new SagaResetPreview { Saga = saga, Since = since.ToString("O", System.Globalization.CultureInfo.InvariantCulture), Instances = instances, Refused = refused, Token = token };
    }

    /// <summary>Applies the reset previewed with <paramref name="token"/>; null and the reason when the token no longer fits what a new preview finds.</summary>
    public static async Task<(List<ResetResult>? Results, string? Error)> ApplyAsync(INatsConnection nats, SagaRuntimeOptions options, ManifestSet manifests, string saga, DateTimeOffset since, int limit, string token, TimeSpan wait, CancellationToken cancellationToken)
    {
        var preview = await PreviewAsync(nats, options, manifests, saga, since, limit, wait, cancellationToken);
        if (!string.Equals(preview.Token, token, StringComparison.Ordinal))
        {
            return (null, "the token does not fit this reset any more (an instance moved on, the script changed, or the token is from another dry run): run the dry run again");
        }
        var results = new List<ResetResult>();
        foreach (var instance in preview.Instances)
        {
            results.Add(await InstanceReset.ApplyAsync(nats, options, manifests, saga, instance.Key, instance.Tenant, instance.To, instance.Token, wait, cancellationToken));
        }
        return (results, null);
    }
}

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(ResetPreview))]
[JsonSerializable(typeof(SagaResetPreview))]
internal sealed partial class ResetJsonContext : JsonSerializerContext;
