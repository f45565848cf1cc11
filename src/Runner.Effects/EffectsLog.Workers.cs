using Microsoft.Extensions.Logging;

namespace Runner.Effects;

/// <summary>Effect worker and claim logs: event ids 4500–4599.</summary>
internal static partial class EffectsLog
{
    [LoggerMessage(4500, LogLevel.Information, "effect worker {Worker} serves {Effect} (pool {Pool}) on consumer {Consumer}, filter {Filter}, concurrency {Concurrency}")]
    public static partial void WorkerStarted(ILogger logger, string effect, string pool, string consumer, string filter, int concurrency, string worker);

    [LoggerMessage(4501, LogLevel.Information, "command {CommandId} (tenant {Tenant}, effect {Effect}) {Outcome} {Code} after {Attempts} attempt(s), execution {Execution}, {ElapsedMs} ms")]
    public static partial void CommandDone(ILogger logger, string commandId, string tenant, string effect, string outcome, string code, int attempts, int execution, double elapsedMs);

    [LoggerMessage(4502, LogLevel.Debug, "command {CommandId} (tenant {Tenant}) is held by {Holder} for {RemainingMs} ms more: left for later")]
    public static partial void ClaimHeld(ILogger logger, string commandId, string tenant, string holder, double remainingMs);

    [LoggerMessage(4503, LogLevel.Warning, "command {CommandId} (tenant {Tenant}): the lease of {Previous} ran out; taking over as execution {Execution} with the same Idempotency-Key")]
    public static partial void ClaimTakenOver(ILogger logger, string commandId, string tenant, string previous, int execution);

    [LoggerMessage(4504, LogLevel.Warning, "command {CommandId} (tenant {Tenant}): this worker's claim was taken over by another worker; it no longer publishes the result")]
    public static partial void ClaimLost(ILogger logger, string commandId, string tenant);

    [LoggerMessage(4505, LogLevel.Information, "command {CommandId} (tenant {Tenant}) was already completed by {Worker}: its stored result is published again, the effect is not run")]
    public static partial void ResultRepublished(ILogger logger, string commandId, string tenant, string worker);

    [LoggerMessage(4506, LogLevel.Error, "command on {Subject} quarantined as {Reason} (effect {Effect}): {Detail}")]
    public static partial void CommandQuarantined(ILogger logger, string effect, string subject, string reason, string detail);

    [LoggerMessage(4507, LogLevel.Warning, "command on {Subject} (effect {Effect}) could not be handled (failure {Failures}) and comes back later: {Reason}")]
    public static partial void CommandFailed(ILogger logger, Exception exception, string effect, string subject, int failures, string reason);

    [LoggerMessage(4512, LogLevel.Warning, "command on {Subject} (effect {Effect}) waits {DelayMs} ms for NATS, which did not answer: {Reason}")]
    public static partial void CommandWaits(ILogger logger, string effect, string subject, double delayMs, string reason);

    [LoggerMessage(4508, LogLevel.Warning, "claim {Key}: heartbeat failed: {Reason}")]
    public static partial void HeartbeatFailed(ILogger logger, string key, string reason);

    [LoggerMessage(4513, LogLevel.Warning, "effect {Effect}: its pull subscription could not be stopped cleanly ({Reason}); commands delivered and not started come back after their ack wait")]
    public static partial void PullStopFailed(ILogger logger, string effect, string reason);

    [LoggerMessage(4510, LogLevel.Warning, "effect {Effect}: a step after the effect ran failed, retrying in {DelayMs} ms: {Reason}")]
    public static partial void StepRetried(ILogger logger, string effect, double delayMs, string reason);

    [LoggerMessage(4509, LogLevel.Warning, "effect {Effect} uses provider '{Provider}', which this worker does not have: its commands are left to workers that do")]
    public static partial void ProviderMissing(ILogger logger, string effect, string provider);

    [LoggerMessage(4511, LogLevel.Warning, "command {CommandId} (tenant {Tenant}): handing the held command back, its claim could not be released ({Reason}); another worker takes it over when the lease runs out")]
    public static partial void ReleaseFailed(ILogger logger, string commandId, string tenant, string reason);
}
