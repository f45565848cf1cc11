using Microsoft.Extensions.Logging;

namespace Runner.Sagas;

/// <summary>Saga runtime log messages; event ids 3000–3199.</summary>
internal static partial class SagasLog
{
    [LoggerMessage(3000, LogLevel.Information, "router consuming {Stream} with consumer {Consumer}")]
    public static partial void RouterStarted(ILogger logger, string stream, string consumer);

    [LoggerMessage(3001, LogLevel.Warning, "quarantined {Stream}#{Sequence} on {Subject} at {Stage}: {Reason} ({Detail}) tenant={Tenant} saga={Saga} key={Key}")]
    public static partial void Quarantined(ILogger logger, string stream, ulong sequence, string subject, string stage, string reason, string detail, string? tenant, string? saga, string? key);

    [LoggerMessage(3098, LogLevel.Information, "router of {Stream}: deleted {Consumer}, a former lease holder's consumer, acked up to {AckFloor}")]
    public static partial void RouterConsumerRetired(ILogger logger, string stream, string consumer, ulong ackFloor);

    [LoggerMessage(3040, LogLevel.Warning, "router of {Stream}: the trigger stream was created again since sequence {Sequence} was routed; routing it from its start")]
    public static partial void RouterCheckpointIgnored(ILogger logger, string stream, ulong sequence);

    [LoggerMessage(3002, LogLevel.Warning, "router publish for {Stream}#{Sequence} failed; it and the {Later} after it in its batch will be routed again: {Reason}")]
    public static partial void RoutePublishFailed(ILogger logger, string stream, ulong sequence, int later, string reason);

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

    [LoggerMessage(3010, LogLevel.Error, "command {CommandId} was refused by the server {Attempts} times and is quarantined: {Reason}")]
    public static partial void CommandQuarantined(ILogger logger, string commandId, int attempts, string reason);

    [LoggerMessage(3011, LogLevel.Debug, "partition {Partition}: inbox purge failed, will retry later: {Reason}")]
    public static partial void InboxPurgeFailed(ILogger logger, int partition, string reason);

    [LoggerMessage(3023, LogLevel.Warning, "nats-server {Version} replays a purge of a replicated stream as a compaction when it restarts, losing messages nobody purged (fixed in {FixedIn}): the inbox ({Replicas} replicas) is not purged below snapshots and keeps growing; upgrade nats-server")]
    public static partial void InboxNotPurged(ILogger logger, string version, int replicas, string fixedIn);

    [LoggerMessage(3012, LogLevel.Information, "retention swept {Markers} dedupe markers, {Instances} done instances with their history, {Quarantined} quarantine records")]
    public static partial void RetentionSwept(ILogger logger, int markers, int instances, int quarantined);

    [LoggerMessage(3013, LogLevel.Information, "partition {Partition} scheduler started; {Backlog} timers overdue, spread over {WindowMs} ms")]
    public static partial void SchedulerStarted(ILogger logger, int partition, long backlog, double windowMs);

    [LoggerMessage(3014, LogLevel.Warning, "partition {Partition} scheduler: {Count} timer events not stored, retrying in {DelayMs} ms")]
    public static partial void SchedulerPublishFailed(ILogger logger, int partition, int count, double delayMs);

    [LoggerMessage(3015, LogLevel.Error, "partition {Partition} scheduler could not delete {Count} fired timers ({Reason}); they will be re-published with the same Nats-Msg-Id")]
    public static partial void SchedulerDeleteFailed(ILogger logger, int partition, int count, string reason);

    [LoggerMessage(3016, LogLevel.Error, "timer {TimerId} was refused by the server {Attempts} times and is quarantined: {Reason}")]
    public static partial void TimerQuarantined(ILogger logger, string timerId, int attempts, string reason);

    [LoggerMessage(3017, LogLevel.Debug, "ignored stale timer {Name} due {DueMs} for {Tenant}/{Saga}/{Key} (live due: {LiveDueMs})")]
    public static partial void StaleTimerIgnored(ILogger logger, string tenant, string saga, string key, string name, long dueMs, long? liveDueMs);

    [LoggerMessage(3009, LogLevel.Error, "outbox relay could not delete {Count} published items ({Reason}); they will be re-published with the same Nats-Msg-Id")]
    public static partial void RelayDeleteFailed(ILogger logger, int count, string reason);

    [LoggerMessage(3018, LogLevel.Warning, "parked {Tenant}/{Saga}/{Key} on event {EventId}: {Reason} ({Detail}); its events are held until an operator resumes, skips or cancels it")]
    public static partial void Parked(ILogger logger, string tenant, string saga, string key, string eventId, string reason, string detail);

    [LoggerMessage(3019, LogLevel.Debug, "held event {EventId} for parked {Tenant}/{Saga}/{Key} (parked on {ParkedOn})")]
    public static partial void Held(ILogger logger, string tenant, string saga, string key, string eventId, string parkedOn);

    [LoggerMessage(3020, LogLevel.Information, "{Action} of parked {Tenant}/{Saga}/{Key} (parked on {ParkedOn}): running {Held} held message(s)")]
    public static partial void ControlApplied(ILogger logger, string action, string tenant, string saga, string key, string parkedOn, int held);

    [LoggerMessage(3021, LogLevel.Warning, "{Action} of {Tenant}/{Saga}/{Key} ignored: {Reason}")]
    public static partial void ControlIgnored(ILogger logger, string action, string tenant, string saga, string key, string reason);

    [LoggerMessage(3022, LogLevel.Warning, "reset {Tenant}/{Saga}/{Key} from version {From} to {To}: {Steps} step(s) replayed with the current script, now at version {Version}")]
    public static partial void ResetApplied(ILogger logger, string tenant, string saga, string key, long from, long to, int steps, long version);

    [LoggerMessage(3024, LogLevel.Information, "warmed up before taking leases: {Events} events of a built-in saga through the router's and the partition worker's code on a scratch store ({Instances} instances started and finished) in {ElapsedMs:F0} ms")]
    public static partial void WarmedUp(ILogger logger, int events, int instances, double elapsedMs);

    [LoggerMessage(3025, LogLevel.Warning, "the warm-up before taking leases failed (the replica starts anyway; its first events will be slower)")]
    public static partial void WarmUpFailed(ILogger logger, Exception error);
}
