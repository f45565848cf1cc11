using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.ObjectStore;
using Runner.Core.Ids;
using Runner.Sagas.Ownership;
using Runner.Storage;

namespace Runner.Sagas.Snapshots;

/// <summary>
/// Makes this replica's store fit to resume a partition it has just acquired. Its own records are
/// kept when they are at or past the newest snapshot (a replica that owned the partition before and
/// kept its volume); otherwise they are replaced by the newest usable snapshot — the older one when
/// the newest is missing, truncated or not what the record says. Either way the worker then replays
/// the retained inbox after that point through the same transition code.
/// </summary>
internal static class PartitionRestore
{
    /// <summary>Returns the checkpoint the partition resumes after.</summary>
    /// <exception cref="UnrestorableException">No snapshot is usable and the inbox before the local checkpoint is purged.</exception>
    public static async Task<ulong> PrepareAsync(LmdbStore store, SnapshotStore objects, OwnedLease lease, Func<ulong> localCheckpoint, ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        var partition = lease.Partition!.Value;
        var record = lease.Record;
        var local = localCheckpoint();
        var newest = record.Snapshots.Count > 0 ? record.Snapshots[0].Sequence : 0;
        if (local >= newest && local + 1 >= record.PurgedBelow)
        {
            OwnershipLog.LocalKept(logger, partition.Value, lease.Epoch, local, newest);
            return local;
        }
        foreach (var snapshot in record.Snapshots)
        {
            if (snapshot.Sequence + 1 < record.PurgedBelow)
            {
                OwnershipLog.SnapshotUnusable(logger, partition.Value, snapshot.Name, $"the inbox after it is purged (below {record.PurgedBelow})");
                continue;
            }
            var started = time.GetTimestamp();
            byte[]? bytes;
            try
            {
                bytes = await objects.GetAsync(snapshot.Name, cancellationToken);
            }
            catch (NatsObjException ex)
            {
                OwnershipLog.SnapshotUnusable(logger, partition.Value, snapshot.Name, ex.Message);
                continue;
            }
            if (bytes is null)
            {
                OwnershipLog.SnapshotUnusable(logger, partition.Value, snapshot.Name, "it is not in the snapshot store");
                continue;
            }
            try
            {
                var records = await SnapshotCodec.RestoreAsync(store, partition, bytes,
                    new ExpectedSnapshot(snapshot.Sequence, snapshot.Epoch, snapshot.Bytes, snapshot.Sha256), cancellationToken);
                var ms = time.GetElapsedTime(started).TotalMilliseconds;
                OwnershipTelemetry.RestoreDuration.Record(ms);
                OwnershipLog.Restored(logger, partition.Value, lease.Epoch, records, snapshot.Instances, snapshot.Name, snapshot.Sequence, ms);
                return snapshot.Sequence;
            }
            catch (InvalidDataException ex)
            {
                OwnershipLog.SnapshotUnusable(logger, partition.Value, snapshot.Name, ex.Message);
            }
        }
        // No snapshot to load. The local store still serves if the inbox after it is all there;
        // with nothing ever purged, an empty store and the whole inbox rebuild the partition.
        // (Read again: a restore that failed after its wipe has removed the local records.)
        local = localCheckpoint();
        if (local + 1 >= record.PurgedBelow)
        {
            if (local == 0)
            {
                await SnapshotCodec.WipeAsync(store, partition, cancellationToken);
            }
            OwnershipLog.LocalKept(logger, partition.Value, lease.Epoch, local, newest);
            return local;
        }
        var reason = $"no usable snapshot, and the inbox below sequence {record.PurgedBelow} is purged while this replica's store is at {local}";
        OwnershipLog.Unrestorable(logger, partition.Value, reason);
        throw new UnrestorableException(reason);
    }
}

/// <summary>A partition cannot be rebuilt from what is stored: it is not served (nothing is applied or acknowledged).</summary>
internal sealed class UnrestorableException(string message) : Exception(message);
