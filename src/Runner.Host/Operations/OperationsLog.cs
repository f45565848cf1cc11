using Microsoft.Extensions.Logging;

namespace Runner.Host.Operations;

/// <summary>Operations log messages (drain, reload, shutdown, HTTP); event ids 9100–9199.</summary>
internal static partial class OperationsLog
{
    [LoggerMessage(9100, LogLevel.Information, "drain started ({Cause}): no new work is taken; finishing what is in hand")]
    public static partial void DrainStarted(ILogger logger, string cause);

    [LoggerMessage(9101, LogLevel.Information, "drained in {ElapsedMs} ms: nothing in flight, outbox empty")]
    public static partial void Drained(ILogger logger, double elapsedMs);

    [LoggerMessage(9102, LogLevel.Warning, "drain did not finish within {DeadlineMs} ms; what is unfinished stays unacknowledged and is redelivered")]
    public static partial void DrainDeadline(ILogger logger, double deadlineMs);

    [LoggerMessage(9103, LogLevel.Information, "resumed: taking work again")]
    public static partial void Resumed(ILogger logger);

    [LoggerMessage(9104, LogLevel.Information, "manifests reloaded: version {From} -> {To}; sagas +[{SagasAdded}] -[{SagasRemoved}] ~[{SagasChanged}], effects +[{EffectsAdded}] -[{EffectsRemoved}] ~[{EffectsChanged}]")]
    public static partial void Reloaded(ILogger logger, string from, string to, string sagasAdded, string sagasRemoved, string sagasChanged, string effectsAdded, string effectsRemoved, string effectsChanged);

    [LoggerMessage(9105, LogLevel.Warning, "manifest reload refused, the running version {Version} stays: {Count} error(s)")]
    public static partial void ReloadRefused(ILogger logger, string version, int count);

    [LoggerMessage(9130, LogLevel.Warning, "manifest reload {Candidate} refused, the running version {Version} stays: replaying live instances diverges for {Sagas} (saga:instances) and the manifests declare no migration")]
    public static partial void ReloadDiverged(ILogger logger, string version, string candidate, string sagas);

    [LoggerMessage(9106, LogLevel.Warning, "admin request {Path} refused: {Reason}")]
    public static partial void AdminRefused(ILogger logger, string path, string reason);

    [LoggerMessage(9107, LogLevel.Warning, "health check failed: {Check}: {Reason}")]
    public static partial void Unhealthy(ILogger logger, string check, string reason);

    [LoggerMessage(9108, LogLevel.Information, "HTTP endpoints on {Urls}; admin endpoints {Admin}")]
    public static partial void Listening(ILogger logger, string urls, string admin);

    [LoggerMessage(9109, LogLevel.Information, "shutting down: draining for up to {DeadlineMs} ms")]
    public static partial void ShuttingDown(ILogger logger, double deadlineMs);
}
