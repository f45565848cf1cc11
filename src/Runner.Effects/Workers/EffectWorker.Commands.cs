using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Subjects;
using Runner.Core.Transitions;
using Runner.Effects.Claims;
using Runner.Effects.Providers;
using Runner.Messaging;

namespace Runner.Effects.Workers;

internal sealed partial class EffectWorker
{
    private static readonly SpanNames s_effectSpans = new("effect");

    /// <summary>How long handing back a command claimed ahead may take (its claim's delete and its NAK).</summary>
    private static readonly TimeSpan s_handBackTime = TimeSpan.FromSeconds(5);

    public const string InvalidCommand = "invalid_command";
    public const string StaleCommand = "stale_command";
    public const string ProcessingError = "processing_error";
    public const string ResultTooLarge = "result_too_large";

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask HandleAsync(JetStreamMessage msg, Delivery? delivery, Hold hold, CancellationToken intake, CancellationToken cancellationToken)
    {
        if (intake.IsCancellationRequested)
        {
            // Delivered after the intake ended (a drain): for one, a command this worker just handed back, redelivered
            // before its pull closed. Claiming it would only hand it back again: it goes back unread and unclaimed,
            // at once.
            await LeaveAsync(msg, TimeSpan.Zero, cancellationToken);
            return;
        }
        if (!TryRead(msg, delivery, out var command, out var reason, out var problem))
        {
            await _quarantine.AddAsync(msg, reason!, problem!, SubjectTenant.FromSubject(msg.Subject), cancellationToken);
            await msg.AckTerminateAsync(cancellationToken: cancellationToken);
            EffectsLog.CommandQuarantined(_logger, Effect, msg.Subject, reason!, problem!);
            return;
        }

        using var span = Tracing.Start(EffectsTelemetry.Source, s_effectSpans, Effect, System.Diagnostics.ActivityKind.Consumer, command!.TraceParent);
        span?.SetTag("runner.tenant", command.Tenant);
        span?.SetTag("runner.saga", command.Saga);
        span?.SetTag("runner.correlation_id", command.CorrelationId);
        span?.SetTag("runner.command_id", command.CommandId);
        // Upstream calls and the result event carry this span, so the trace goes on from here.
        if (span is not null)
        {
            command = command with { TraceParent = Tracing.TraceParent(span, command.TraceParent) };
        }
        using var scope = LogScope.For(_logger, command.Tenant, command.Saga, command.CorrelationId, command.CommandId, command.TraceParent);
        var key = ClaimKeys.For(command.Tenant, command.CommandId);
        if (!_running.TryAdd(key, 0))
        {
            // A redelivery while this worker still runs it: the running copy acks.
            return;
        }
        try
        {
            var claiming = _time.GetTimestamp();
            var decision = await _claims.ClaimAsync(command.Tenant, command.CommandId, cancellationToken);
            hold.Ahead.Claimed(_time.GetElapsedTime(claiming));
            switch (decision)
            {
                case ClaimDecision.AlreadyCompleted completed:
                    await RepublishAsync(command, completed.Record, cancellationToken);
                    await msg.AckAsync(AckFor(intake), cancellationToken).QuietlyAsync();
                    break;
                case ClaimDecision.HeldElsewhere held:
                    EffectsLog.ClaimHeld(_logger, command.CommandId, command.Tenant, held.Worker, held.Remaining.TotalMilliseconds);
                    await LeaveAsync(msg, held.Remaining + TimeSpan.FromMilliseconds(100), cancellationToken);
                    Interlocked.Increment(ref _leftHeld);
                    break;
                case ClaimDecision.Claimed claimed:
                    using (var claim = claimed.Claim)
                    {
                        if (claim.Takeover)
                        {
                            EffectsLog.ClaimTakenOver(_logger, command.CommandId, command.Tenant, claim.PreviousWorker ?? "?", claim.Attempt);
                        }
                        await RunClaimedAsync(msg, delivery, command, claim, hold, intake, cancellationToken);
                    }
                    break;
            }
        }
        finally
        {
            _running.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// Runs a claimed command: execute → mark the claim completed with the result → publish the
    /// result → ack. Completing before publishing means that, once the effect ran, every later
    /// delivery of the command re-publishes the stored result and nothing runs it again — even if
    /// this worker dies or NATS is briefly away between the steps. A command an open circuit holds
    /// while the <paramref name="intake"/> ends is handed back instead.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask RunClaimedAsync(JetStreamMessage msg, Delivery? delivery, CommandMessage command, Claim claim, Hold hold, CancellationToken intake, CancellationToken cancellationToken)
    {
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var kept = _leases.Track(msg, command.CommandId, claim, lost);
        try
        {
            // A command claimed ahead waits here for a slot, its lease kept; or until its claim is lost, when it goes back
            // at once (below) rather than hold its place in the pull until a slot comes.
            var slot = await hold.RunAsync(lost.Token);
            var claimLost = lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested;
            if (!slot && !claimLost)
            {
                // The worker stopped taking work before a slot came free: nothing ran, so any worker may take it at once.
                // Given its own few seconds, so that a drain cut short by its deadline still hands it back.
                await _leases.StopAsync(kept);
                using var handBack = new CancellationTokenSource(s_handBackTime, _time);
                await HandBackAsync(msg, command, claim, handBack.Token);
                return;
            }
            if (!slot || ((lost.IsCancellationRequested || _leases.Lapsing(claim)) && !cancellationToken.IsCancellationRequested))
            {
                // Without a slot, its claim lost while it waited (read once above: an abort since does not let it run).
                // The lease ran out while it waited (or is about to, the margin the keeper gives a run up at): nothing
                // ran, and another worker may hold the claim now. The command goes back at once, for whoever holds it
                // (or, once it lapses, anyone) to run.
                EffectsLog.ClaimLost(_logger, command.CommandId, command.Tenant);
                Interlocked.Increment(ref _lost);
                await LeaveAsync(msg, TimeSpan.Zero, cancellationToken);
                return;
            }
            var startedAt = _time.GetUtcNow();
            var running = _time.GetTimestamp();
            EffectExecution execution;
            try
            {
                var effect = _effects(command.Effect);
                // give_up_after_ms counts from when the command was stored, the same on every redelivery and worker.
                var bounds = new ExecutionBounds(delivery?.Timestamp ?? startedAt, intake);
                execution = effect is null
                    ? new EffectExecution(false, null, new EffectError(EffectErrorCodes.UnknownEffect, $"effect '{command.Effect}' is not declared in the loaded manifests"), 0)
                    : await _executor.ExecuteAsync(effect, command, bounds, lost.Token);
            }
            catch (OperationCanceledException) when (lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // Our lease ran out and another worker took the command over: it owns the result now.
                EffectsLog.ClaimLost(_logger, command.CommandId, command.Tenant);
                Interlocked.Increment(ref _lost);
                return;
            }
            if (execution.HandedBack)
            {
                await _leases.StopAsync(kept);
                await HandBackAsync(msg, command, claim, cancellationToken);
                return;
            }
            _leases.EffectRan(kept);
            hold.Ahead.Ran(_time.GetElapsedTime(running));
            Interlocked.Increment(ref _executed);
            // The effect ran: its slot takes the next command while this one is completed, published and acked.
            if (!await hold.FinishAsync())
            {
                throw new OperationCanceledException(cancellationToken); // aborted: not acked, it comes back
            }
            var finishedAt = _time.GetUtcNow();
            EffectsTelemetry.Duration.Record((finishedAt - startedAt).TotalMilliseconds,
                new(EffectsTelemetry.EffectTag, command.Effect), new(EffectsTelemetry.OutcomeTag, execution.Succeeded ? ResultEvents.Succeeded : ResultEvents.Failed));
            if (!execution.Succeeded)
            {
                Tracing.Fail(System.Diagnostics.Activity.Current, execution.Error?.Code ?? ResultEvents.Failed);
            }
            var (subject, json) = ResultEvents.Build(command, execution, startedAt, finishedAt);
            var size = json.Length;
            if (size > _options.MaxResultBytes)
            {
                execution = new EffectExecution(false, null, new EffectError(ResultTooLarge,
                    $"the result event would be {size} bytes, over the limit of {_options.MaxResultBytes}"), execution.Attempts);
                (subject, json) = ResultEvents.Build(command, execution, startedAt, finishedAt);
            }

            // From here on the lease no longer guards anything: it kept two workers from running the effect at once,
            // and the effect has run. Whatever became of the lease since (it may have run out while this command
            // waited for a finishing place; the keeper renews it again once it can), the completion is tried. It is a
            // compare-and-set on the claim's revision: refused if another worker took the claim over, so that
            // worker's run stands; made if nobody did, which spares the second run a takeover would be.
            bool completed;
            try
            {
                completed = await RetryAsync(static (s, token) => s.Claim.CompleteAsync(s.Subject, s.Json, token), (Claim: claim, Subject: subject, Json: json), cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The effect ran, but the claim refuses its completion for good. Handing the command
                // back would let a takeover run it again (invariant 4): keep it in quarantine instead.
                await _quarantine.AddAsync(msg, ProcessingError, $"the effect ran but its completion could not be recorded: {ex.Message}", command.Tenant, cancellationToken);
                await msg.AckTerminateAsync(cancellationToken: cancellationToken);
                EffectsLog.CommandQuarantined(_logger, Effect, msg.Subject, ProcessingError, ex.Message);
                return;
            }
            if (!completed)
            {
                cancellationToken.ThrowIfCancellationRequested(); // aborted before the completion was made: not acked, it comes back
                EffectsLog.ClaimLost(_logger, command.CommandId, command.Tenant);
                Interlocked.Increment(ref _lost);
                return;
            }
            if (Hooks?.AfterCompleted is { } afterCompleted)
            {
                await afterCompleted(command.CommandId, cancellationToken);
            }
            if (!await RetryAsync(static (s, token) => s.Worker.PublishResultAsync(s.Command, s.Subject, s.Json, token), (Worker: this, Command: command, Subject: subject, Json: json), cancellationToken))
            {
                // Aborted before the PubAck: not acked, so the redelivery re-publishes the stored result.
                return;
            }
            if (Hooks?.AfterPublished is { } afterPublished)
            {
                await afterPublished(command.CommandId, cancellationToken);
            }
            if (Hooks?.NakInsteadOfAck?.Invoke(command.CommandId) == true)
            {
                await msg.NakAsync(cancellationToken: cancellationToken);
                return;
            }
            // A lost ack is harmless: the redelivery finds the claim completed and re-publishes.
            await msg.AckAsync(AckFor(intake), cancellationToken).QuietlyAsync();
            EffectsLog.CommandDone(_logger, command.CommandId, command.Tenant, command.Effect, execution.Succeeded ? ResultEvents.Succeeded : ResultEvents.Failed,
                execution.Error?.Code ?? "-", execution.Attempts, claim.Attempt, (finishedAt - startedAt).TotalMilliseconds);
        }
        finally
        {
            await _leases.StopAsync(kept);
        }
    }

    /// <summary>
    /// Acks are sent without waiting while the worker takes work; once it stops taking any (drain, shutdown) each ack waits
    /// for the server's confirmation, so a stopped worker has nothing left in hand on the consumer and a successor gets no
    /// redelivery of what was done (harmless, but a wasted claim lookup and result re-publish each).
    /// </summary>
    private static bool AckFor(CancellationToken intake) => intake.IsCancellationRequested;

    /// <summary>
    /// Gives a held command back to the stream: its claim is deleted (at this run's revision, so
    /// only a claim still ours and still running), then it is NAKed for any worker to take at once.
    /// Nothing was in flight, so whoever takes it next calls the upstream as a retry would, with
    /// the same <c>Idempotency-Key</c>. If the delete fails, the lease runs out and a takeover follows.
    /// </summary>
    private async Task HandBackAsync(JetStreamMessage msg, CommandMessage command, Claim claim, CancellationToken cancellationToken)
    {
        try
        {
            if (!await claim.ReleaseAsync(cancellationToken))
            {
                EffectsLog.ReleaseFailed(_logger, command.CommandId, command.Tenant, "the claim is no longer this run's");
            }
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            EffectsLog.ReleaseFailed(_logger, command.CommandId, command.Tenant, ex.Message);
        }
        await LeaveAsync(msg, TimeSpan.Zero, cancellationToken);
        Interlocked.Increment(ref _handedBack);
    }

    /// <summary>
    /// Retries a step whose failure is NATS being briefly away, in place, until it succeeds or the
    /// token ends it: after the effect ran, giving up would mean running it again later. A refusal
    /// that will always repeat (too large) is not retried here. The step gets what it works on as
    /// <paramref name="state"/>, so that no command allocates a closure for it.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> RetryAsync<TState>(Func<TState, CancellationToken, ValueTask<bool>> step, TState state, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                return await step(state, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            // Broader than PubAcks.IsTransient on purpose: giving up here loses a result that exists.
            catch (Exception ex) when (ex is NatsException or TimeoutException && !PubAcks.IsRefusal(ex))
            {
                EffectsLog.StepRetried(_logger, Effect, delay.TotalMilliseconds, ex.Message);
                try
                {
                    await Task.Delay(delay, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5_000));
            }
        }
    }

    private async ValueTask RepublishAsync(CommandMessage command, ClaimRecord record, CancellationToken cancellationToken)
    {
        if (record.ResultSubject is null || record.ResultEvent is null)
        {
            throw new InvalidDataException($"completed claim of {command.CommandId} has no stored result");
        }
        await PublishResultAsync(command, record.ResultSubject, record.ResultEvent, cancellationToken);
        Interlocked.Increment(ref _republished);
        EffectsLog.ResultRepublished(_logger, command.CommandId, command.Tenant, record.Worker);
    }

    /// <summary>Publishes a result event under its command's <c>Nats-Msg-Id</c>. True once stored (so it serves as a step of <see cref="RetryAsync"/>); throws otherwise.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> PublishResultAsync(CommandMessage command, string subject, byte[] json, CancellationToken cancellationToken)
    {
        var id = ResultEvents.Id(command.CommandId);
        var headers = NatsMessages.EndToEnd(command.Tenant, command.CorrelationId, command.CommandId, command.TraceParent);
        var pending = await _publisher.PublishAsync(subject, json, EventHeaders.Encode(id), headers, cancellationToken);
        var ack = await pending.GetResponseAsync(cancellationToken);
        ack.EnsureStored();
        return true;
    }

    /// <summary>Reads the command body and checks it against the subject it arrived on and its age.</summary>
    private bool TryRead(JetStreamMessage msg, Delivery? delivery, out CommandMessage? command, out string? reason, out string? problem)
    {
        command = null;
        reason = InvalidCommand;
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
        if (delivery is { } stored && _time.GetUtcNow() - stored.Timestamp > _options.CommandMaxAge)
        {
            reason = StaleCommand;
            problem = $"command was stored {stored.Timestamp:O}, longer ago than {_options.CommandMaxAge}: its claim may have expired, "
                + "so whether it already ran cannot be known; it is kept here instead of being run";
            return false;
        }
        string? traceParent = null;
        try
        {
            if (msg.Headers.TryGetValue(EventHeaders.TraceParent, out var trace))
            {
                traceParent = trace;
            }
        }
        catch (FormatException ex)
        {
            problem = $"command headers cannot be read: {ex.Message}";
            return false;
        }
        var payload = parsed.Payload.ValueKind == JsonValueKind.Undefined ? Core.Json.JsonNull.Element : parsed.Payload;
        command = parsed with { Pool = Pool, TraceParent = traceParent ?? parsed.TraceParent, Payload = payload };
        reason = null;
        problem = null;
        return true;
    }
}
