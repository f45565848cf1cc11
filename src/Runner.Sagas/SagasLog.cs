using Microsoft.Extensions.Logging;

namespace Runner.Sagas;

/// <summary>Saga runtime log messages; event ids 3000–3199.</summary>
internal static partial class SagasLog
{
    [LoggerMessage(3000, LogLevel.Information, "router consuming {Stream} with consumer {Consumer}")]
    public static partial void RouterStarted(ILogger logger, string stream, string consumer);

    [LoggerMessage(3001, LogLevel.Warning, "quarantined {Stream}#{Sequence} on {Subject} at {Stage}: {Reason} ({Detail}) tenant={Tenant} saga={Saga} key={Key}")]
    public static partial void Quarantined(ILogger logger, string stream, ulong sequence, string subject, string stage, string reason, string detail, string? tenant, string? saga, string? key);

    [LoggerMessage(3002, LogLevel.Warning, "router publish for {Stream}#{Sequence} failed (delivery {Delivery}), will retry: {Reason}")]
    public static partial void RoutePublishFailed(ILogger logger, string stream, ulong sequence, ulong delivery, string reason);

    [LoggerMessage(3003, LogLevel.Information, "partition {Partition} worker started with consumer {Consumer} at checkpoint {Checkpoint}")]
    public static partial void PartitionStarted(ILogger logger, int partition, string consumer, ulong checkpoint);

    [LoggerMessage(3004, LogLevel.Error, "partition {Partition}: commit of {Count} messages failed ({Code}): {Reason}; nothing acked, retrying the batch")]
    public static partial void PartitionCommitFailed(ILogger logger, int partition, int count, string code, string reason);

    [LoggerMessage(3005, LogLevel.Debug, "transition {Tenant}/{Saga}/{Key} v{Version} on {EventType} ({EventId}): {Commands} commands, {Schedules} schedules, done={Done}")]
    public static partial void Transition(ILogger logger, string tenant, string saga, string key, long version, string eventType, string eventId, int commands, int schedules, bool done);

    [LoggerMessage(3006, LogLevel.Warning, "outbox relay publish failed for {Count} commands, retrying in {DelayMs} ms: {Reason}")]
    public static partial void RelayPublishFailed(ILogger logger, int count, double delayMs, string reason);

    [LoggerMessage(3007, LogLevel.Information, "outbox relay started; {Pending} commands pending from before")]
    public static partial void RelayStarted(ILogger logger, int pending);

    [LoggerMessage(3008, LogLevel.Error, "{Component} loop failed, restarting in {DelayMs} ms")]
    public static partial void LoopFailed(ILogger logger, Exception exception, string component, double delayMs);

    [LoggerMessage(3010, LogLevel.Error, "command {CommandId} was refused by the server {Attempts} times and is quarantined: {Reason}")]
    public static partial void CommandQuarantined(ILogger logger, string commandId, int attempts, string reason);

    [LoggerMessage(3011, LogLevel.Debug, "partition {Partition}: inbox purge failed, will retry later: {Reason}")]
    public static partial void InboxPurgeFailed(ILogger logger, int partition, string reason);

    [LoggerMessage(3012, LogLevel.Information, "swept {Count} expired dedupe markers")]
    public static partial void DedupeSwept(ILogger logger, int count);

    [LoggerMessage(3009, LogLevel.Error, "outbox relay could not delete {Count} published items ({Reason}); they will be re-published with the same Nats-Msg-Id")]
    public static partial void RelayDeleteFailed(ILogger logger, int count, string reason);
}
