using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Manifests;
using Runner.Core.Subjects;
using Runner.Core.Transitions;
using Runner.Effects.Claims;
using Runner.Effects.Providers;
using Runner.Messaging;

namespace Runner.Effects.Workers;

internal sealed partial class EffectWorker
{
    public const string InvalidCommand = "invalid_command";

    private static readonly JsonElement s_null = JsonDocument.Parse("null").RootElement.Clone();

    private async Task HandleAsync(INatsJSMsg<byte[]> msg, CancellationToken cancellationToken)
    {
        if (!TryRead(msg, out var command, out var problem))
        {
            await _quarantine.AddAsync(msg, InvalidCommand, problem!, SubjectTenant.FromSubject(msg.Subject), cancellationToken);
            await msg.AckTerminateAsync(cancellationToken: cancellationToken);
            EffectsLog.CommandQuarantined(_logger, Effect, msg.Subject, problem!);
            return;
        }

        var key = ClaimKeys.For(command!.Tenant, command.CommandId);
        if (!_running.TryAdd(key, 0))
        {
            // A redelivery while this worker still runs it: the running copy acks.
            return;
        }
        try
        {
            var decision = await _claims.ClaimAsync(command.Tenant, command.CommandId, cancellationToken);
            switch (decision)
            {
                case ClaimDecision.AlreadyCompleted completed:
                    await RepublishAsync(command, completed.Record, cancellationToken);
                    await msg.AckAsync(cancellationToken: cancellationToken);
                    break;
                case ClaimDecision.HeldElsewhere held:
                    EffectsLog.ClaimHeld(_logger, command.CommandId, command.Tenant, held.Worker, held.Remaining.TotalMilliseconds);
                    await LeaveAsync(msg, held.Remaining + TimeSpan.FromMilliseconds(100));
                    break;
                case ClaimDecision.Claimed claimed:
                    if (claimed.Claim.Takeover)
                    {
                        EffectsLog.ClaimTakenOver(_logger, command.CommandId, command.Tenant, claimed.Claim.PreviousWorker ?? "?", claimed.Claim.Attempt);
                    }
                    await RunClaimedAsync(msg, command, claimed.Claim, cancellationToken);
                    break;
            }
        }
        finally
        {
            _running.TryRemove(key, out _);
        }
    }

    private async Task RunClaimedAsync(INatsJSMsg<byte[]> msg, CommandMessage command, Claim claim, CancellationToken cancellationToken)
    {
        var startedAt = _time.GetUtcNow();
        EffectExecution execution;
        using (var lost = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        using (var heartbeatStop = new CancellationTokenSource())
        {
            var heartbeat = HeartbeatAsync(msg, claim, lost, heartbeatStop.Token);
            try
            {
                var effect = _effects(command.Effect);
                execution = effect is null
                    ? new EffectExecution(false, null, new EffectError(EffectErrorCodes.UnknownEffect, $"effect '{command.Effect}' is not declared in the loaded manifests"), 0)
                    : await _executor.ExecuteAsync(effect, command, lost.Token);
            }
            catch (OperationCanceledException) when (lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // Our lease ran out and another worker took the command over: it owns the result now.
                EffectsLog.ClaimLost(_logger, command.CommandId, command.Tenant);
                return;
            }
            finally
            {
                await heartbeatStop.CancelAsync();
                await heartbeat;
            }
            if (lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                EffectsLog.ClaimLost(_logger, command.CommandId, command.Tenant);
                return;
            }
        }
        Interlocked.Increment(ref _executed);

        var finishedAt = _time.GetUtcNow();
        var (subject, json) = ResultEvents.Build(command, execution, startedAt, finishedAt);
        await PublishResultAsync(command, subject, json, cancellationToken);
        if (Hooks?.AfterPublished is { } afterPublished)
        {
            await afterPublished(command.CommandId, cancellationToken);
        }
        if (!await claim.CompleteAsync(subject, json, cancellationToken))
        {
            // Published, but another worker took the claim meanwhile; its result carries the same
            // Nats-Msg-Id, and the saga drops the second copy by event id.
            EffectsLog.ClaimLost(_logger, command.CommandId, command.Tenant);
        }
        if (Hooks?.AfterCompleted is { } afterCompleted)
        {
            await afterCompleted(command.CommandId, cancellationToken);
        }
        if (Hooks?.NakInsteadOfAck?.Invoke(command.CommandId) == true)
        {
            await msg.NakAsync(cancellationToken: cancellationToken);
            return;
        }
        await msg.AckAsync(cancellationToken: cancellationToken);
        EffectsLog.CommandDone(_logger, command.CommandId, command.Tenant, command.Effect, execution.Succeeded ? ResultEvents.Succeeded : ResultEvents.Failed,
            execution.Error?.Code ?? "-", execution.Attempts, claim.Attempt, (finishedAt - startedAt).TotalMilliseconds);
    }

    /// <summary>While the effect runs: keep the message from being redelivered and the lease from running out.</summary>
    private async Task HeartbeatAsync(INatsJSMsg<byte[]> msg, Claim claim, CancellationTokenSource lost, CancellationToken stop)
    {
        var interval = TimeSpan.FromMilliseconds(Math.Max(50, _claims.Lease.TotalMilliseconds / 3));
        try
        {
            while (true)
            {
                await Task.Delay(interval, _time, stop);
                try
                {
                    await msg.AckProgressAsync(cancellationToken: stop);
                    if (!await claim.RenewAsync(stop))
                    {
                        await lost.CancelAsync();
                        return;
                    }
                }
                catch (NatsException ex)
                {
                    // NATS is briefly away: keep running; if the lease runs out meanwhile, the
                    // next renewal finds the claim taken and stops this run.
                    EffectsLog.HeartbeatFailed(_logger, claim.Key, ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The effect finished.
        }
    }

    private async Task RepublishAsync(CommandMessage command, ClaimRecord record, CancellationToken cancellationToken)
    {
        if (record.ResultSubject is null || record.ResultEvent is null)
        {
            throw new InvalidDataException($"completed claim of {command.CommandId} has no stored result");
        }
        await PublishResultAsync(command, record.ResultSubject, record.ResultEvent, cancellationToken);
        Interlocked.Increment(ref _republished);
        EffectsLog.ResultRepublished(_logger, command.CommandId, command.Tenant, record.Worker);
    }

    private async Task PublishResultAsync(CommandMessage command, string subject, string json, CancellationToken cancellationToken)
    {
        var id = ResultEvents.Id(command.CommandId);
        var headers = new NatsHeaders
        {
            [EventHeaders.TenantId] = EventHeaders.Encode(command.Tenant),
            [EventHeaders.CorrelationId] = EventHeaders.Encode(command.CorrelationId),
            [EventHeaders.CausationId] = EventHeaders.Encode(command.CommandId),
        };
        if (command.TraceParent is not null)
        {
            headers[EventHeaders.TraceParent] = command.TraceParent;
        }
        var ack = await _js.PublishAsync(subject, Encoding.UTF8.GetBytes(json), headers: headers,
            opts: new NatsJSPubOpts { MsgId = EventHeaders.Encode(id) }, cancellationToken: cancellationToken);
        ack.EnsureStored();
    }

    /// <summary>Reads the command body and checks it against the subject it arrived on.</summary>
    private bool TryRead(INatsJSMsg<byte[]> msg, out CommandMessage? command, out string? problem)
    {
        command = null;
        var data = msg.Data ?? [];
        if (data.Length > _options.MaxCommandBytes)
        {
            problem = $"command is {data.Length} bytes, over the limit of {_options.MaxCommandBytes}";
            return false;
        }
        CommandMessage? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(data, CoreJsonContext.Default.CommandMessage);
        }
        catch (JsonException ex)
        {
            problem = $"command body is not a command: {ex.Message}";
            return false;
        }
        if (parsed is null)
        {
            problem = "command body is JSON null";
            return false;
        }
        if (string.IsNullOrWhiteSpace(parsed.CommandId) || string.IsNullOrWhiteSpace(parsed.Tenant) || string.IsNullOrWhiteSpace(parsed.Saga)
            || string.IsNullOrWhiteSpace(parsed.CorrelationId) || string.IsNullOrWhiteSpace(parsed.Effect))
        {
            problem = "command lacks command_id, tenant, effect, saga or correlation_id";
            return false;
        }
        if (!string.Equals(parsed.Effect, Effect, StringComparison.Ordinal))
        {
            problem = $"command for effect '{parsed.Effect}' arrived on a subject of effect '{Effect}'";
            return false;
        }
        var subjectTenant = SubjectTenant.FromSubject(msg.Subject);
        if (!string.Equals(subjectTenant, parsed.Tenant, StringComparison.Ordinal))
        {
            problem = $"command tenant '{parsed.Tenant}' does not match the subject's tenant '{subjectTenant}'";
            return false;
        }
        string? traceParent = null;
        if (msg.Headers is { } headers && headers.TryGetValue(EventHeaders.TraceParent, out var values))
        {
            traceParent = values.ToString();
        }
        var payload = parsed.Payload.ValueKind == JsonValueKind.Undefined ? s_null : parsed.Payload;
        command = parsed with { Pool = Pool, TraceParent = traceParent ?? parsed.TraceParent, Payload = payload };
        problem = null;
        return true;
    }
}
