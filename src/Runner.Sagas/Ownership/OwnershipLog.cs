using Microsoft.Extensions.Logging;

namespace Runner.Sagas.Ownership;

/// <summary>Leases, hand-over, snapshots and restore; event ids 3200–3299.</summary>
internal static partial class OwnershipLog
{
    [LoggerMessage(3200, LogLevel.Information, "replica {Worker} joined the ownership bucket {Bucket} (lease {LeaseMs} ms)")]
    public static partial void Joined(ILogger logger, string worker, string bucket, double leaseMs);

    [LoggerMessage(3201, LogLevel.Information, "acquired {Key} at epoch {Epoch} (was {Previous}: {PreviousState}, epoch {PreviousEpoch})")]
    public static partial void Acquired(ILogger logger, string key, long epoch, string previous, string previousState, long previousEpoch);

    [LoggerMessage(3202, LogLevel.Warning, "{Key} at epoch {Epoch} is fenced: {Reason}; its work stops")]
    public static partial void Fenced(ILogger logger, string key, long epoch, string reason);

    [LoggerMessage(3203, LogLevel.Warning, "write to lease {Key} (epoch {Epoch}) got no answer: {Reason}")]
    public static partial void LeaseWriteFailed(ILogger logger, string key, long epoch, string reason);

    [LoggerMessage(3204, LogLevel.Information, "handing over {Key} at epoch {Epoch} ({Reason})")]
    public static partial void HandingOver(ILogger logger, string key, long epoch, string reason);

    [LoggerMessage(3205, LogLevel.Information, "released {Key} at epoch {Epoch}, checkpoint {Checkpoint}, after {Ms} ms")]
    public static partial void Released(ILogger logger, string key, long epoch, ulong checkpoint, double ms);

    [LoggerMessage(3206, LogLevel.Warning, "hand-over of {Key} failed, the lease runs out instead: {Reason}")]
    public static partial void HandOverFailed(ILogger logger, string key, string reason);

    [LoggerMessage(3207, LogLevel.Warning, "ownership bucket watch failed, watching again in {DelayMs} ms: {Reason}")]
    public static partial void WatchFailed(ILogger logger, double delayMs, string reason);

    [LoggerMessage(3208, LogLevel.Warning, "ownership round failed, retrying in {DelayMs} ms: {Reason}")]
    public static partial void RoundFailed(ILogger logger, double delayMs, string reason);

    [LoggerMessage(3209, LogLevel.Information, "partition {Partition} epoch {Epoch}: restored {Records} records ({Instances} instances) from snapshot {Name} at inbox sequence {Sequence} in {Ms} ms")]
    public static partial void Restored(ILogger logger, int partition, long epoch, long records, long instances, string name, ulong sequence, double ms);

    [LoggerMessage(3210, LogLevel.Information, "partition {Partition} epoch {Epoch}: local store at checkpoint {Checkpoint} is at or past the snapshot ({Sequence}); using it")]
    public static partial void LocalKept(ILogger logger, int partition, long epoch, ulong checkpoint, ulong sequence);

    [LoggerMessage(3211, LogLevel.Error, "partition {Partition}: snapshot {Name} is unusable ({Reason}); trying the one before it")]
    public static partial void SnapshotUnusable(ILogger logger, int partition, string name, string reason);

    [LoggerMessage(3212, LogLevel.Critical, "partition {Partition} cannot be restored: {Reason}; it is not served until an operator acts (nothing is applied or acknowledged meanwhile)")]
    public static partial void Unrestorable(ILogger logger, int partition, string reason);

    [LoggerMessage(3213, LogLevel.Debug, "partition {Partition} epoch {Epoch}: snapshot {Name} at {Sequence}: {Records} records, {Bytes} bytes in {Ms} ms")]
    public static partial void SnapshotWritten(ILogger logger, int partition, long epoch, string name, ulong sequence, long records, long bytes, double ms);

    [LoggerMessage(3214, LogLevel.Warning, "partition {Partition}: snapshot failed, retrying later: {Reason}")]
    public static partial void SnapshotFailed(ILogger logger, int partition, string reason);

    [LoggerMessage(3215, LogLevel.Information, "partition {Partition} epoch {Epoch}: transitions from inbox sequence {From} run with manifest version {Manifest}")]
    public static partial void VersionSwitched(ILogger logger, int partition, long epoch, ulong from, string manifest);

    [LoggerMessage(3219, LogLevel.Error, "partition {Partition}: its lease record was lost (it recorded no manifest version and no snapshot, while the snapshot store holds its snapshots); {Count} of them, the newest {Name} at inbox sequence {Sequence}, are referenced again, and what follows replays with the manifest version loaded now")]
    public static partial void RecordRecovered(ILogger logger, int partition, int count, string name, ulong sequence);

    [LoggerMessage(3216, LogLevel.Error, "partition {Partition}: manifest version {Manifest}, which inbox sequence {Sequence} must replay with, is not available: {Reason}; the partition waits")]
    public static partial void VersionMissing(ILogger logger, int partition, string manifest, ulong sequence, string reason);

    [LoggerMessage(3217, LogLevel.Information, "partition {Partition} epoch {Epoch}: replaying inbox after {From} with the recorded manifest versions up to {Horizon}")]
    public static partial void Replaying(ILogger logger, int partition, long epoch, ulong from, ulong horizon);

    [LoggerMessage(3218, LogLevel.Information, "left the ownership bucket: {Partitions} partitions and {Routers} routers handed over")]
    public static partial void Left(ILogger logger, int partitions, int routers);
}
