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

/// <summary>A partition's lease record lost, and what the snapshot store still holds of it.</summary>
internal static class LostRecord
{
    /// <summary>
    /// A lease record that records no manifest version and no snapshot has seen nothing run (a
    /// version is recorded before anything runs with it), unless it was lost: deleted, or
    /// unreadable and written afresh by the replica that took the partition. The snapshot store
    /// then still holds the partition's snapshots, while the inbox before them may be purged, and
    /// the record would let a replica with an empty store start from what the inbox still holds.
    /// The two newest snapshots of this inbox are referenced again, as the record kept them, and
    /// (when the inbox is purged at all) the inbox is counted purged below the older, as it was at
    /// most: the restore then uses them (or a store at least as far), and the sweep keeps them.
    /// Returns whether the record was recovered.
    /// </summary>
    /// <param name="inboxCreated">
    /// When the inbox stream was created, which identifies it: a snapshot of an inbox since deleted
    /// (a deployment started over without emptying the snapshot store) covers nothing of this one.
    /// </param>
    /// <param name="horizon">The partition's last inbox sequence: a snapshot past it cannot be of this inbox.</param>
    /// <param name="purge">Whether owners purge the inbox (false: it is whole, and nothing is marked purged).</param>
    /// <exception cref="UnrestorableException">The newest snapshots of this inbox cannot be read.</exception>
    public static async Task<bool> RecoverAsync(SnapshotStore objects, OwnedLease lease, DateTimeOffset inboxCreated, ulong horizon, bool purge,
        ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        if (lease.Record.Versions.Count > 0 || lease.Record.Snapshots.Count > 0)
        {
            return false;
        }
        var partition = lease.Partition!.Value;
        var found = new List<(string Name, ulong Sequence, long Epoch)>();
        foreach (var name in await objects.NamesAsync(partition, cancellationToken))
        {
            if (SnapshotStore.TryParseName(name, out var sequence, out var epoch) && sequence <= horizon)
            {
                found.Add((name, sequence, epoch));
            }
        }
        // The newest two of this inbox: the record kept those, and the inbox may be purged up to the older. An older
        // one (a fenced owner's, not swept yet) may lie below what is purged: it is not a fallback.
        var kept = new List<SnapshotRef>();
        var considered = 0;
        foreach (var (name, sequence, epoch) in found.OrderByDescending(f => f.Sequence))
        {
            if (considered == 2)
            {
                break;
            }
            byte[]? bytes;
            try
            {
                if (await objects.InfoAsync(name, cancellationToken) is not { } stored)
                {
                    continue; // gone since it was listed
                }
                if (OfAnotherInbox(stored, inboxCreated) is { } why)
                {
                    // It covers nothing of this inbox: its sequences are another stream's.
                    OwnershipLog.SnapshotUnusable(logger, partition.Value, name, why);
                    continue;
                }
                considered++;
                bytes = await objects.GetAsync(name, cancellationToken);
            }
            catch (NatsObjException ex)
            {
                OwnershipLog.SnapshotUnusable(logger, partition.Value, name, ex.Message);
                continue;
            }
            if (bytes is null)
            {
                continue;
            }
            // The record that held the digest is gone: the restore checks the image's own header and trailer.
            kept.Add(new SnapshotRef
            {
                Name = name,
                Sequence = sequence,
                Epoch = epoch,
                Bytes = bytes.Length,
                Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)),
                AtMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
            });
        }
        if (kept.Count == 0)
        {
            if (considered > 0)
            {
                var reason = $"the lease record was lost, and the newest {considered} snapshot(s) of the partition in the snapshot store cannot be read";
                OwnershipLog.Unrestorable(logger, partition.Value, reason);
                throw new UnrestorableException(reason);
            }
            return false;
        }
        var below = kept[^1].Sequence + 1;
        var recovered = await lease.UpdateAsync(r => r.Versions.Count > 0 || r.Snapshots.Count > 0 ? r : r with
        {
            Snapshots = kept,
            PurgedBelow = purge ? Math.Max(r.PurgedBelow, below) : r.PurgedBelow,
        }, cancellationToken);
        if (!recovered)
        {
            throw new InvalidOperationException($"the lease record of partition {partition.Value} could not be updated: {lease.FencedBecause ?? "write refused"}");
        }
        OwnershipLog.RecordRecovered(logger, partition.Value, kept.Count, kept[0].Name, kept[0].Sequence);
        return true;
    }

    /// <summary>
    /// Why a stored snapshot is not of the inbox created at <paramref name="inboxCreated"/>, or
    /// null when it is. A stamped snapshot names its inbox: the two are the same stream exactly
    /// when the stamps are equal. One written before snapshots were stamped is judged by when it
    /// was stored against when the inbox was created: two machines' clocks, so a misjudged one is
    /// logged, and leaves the partition to what the inbox still holds.
    /// </summary>
    internal static string? OfAnotherInbox(StoredSnapshot stored, DateTimeOffset inboxCreated)
    {
        var inbox = SnapshotStore.InboxStamp(inboxCreated);
        if (stored.Inbox is { } stamp)
        {
            return string.Equals(stamp, inbox, StringComparison.Ordinal)
                ? null
                : $"it covers the inbox stream created {stamp}, not this one (created {inbox})";
        }
        return stored.StoredAt < inboxCreated
            ? $"unstamped, and stored {stored.StoredAt:O}, before the inbox stream was created ({inbox})"
            : null;
    }
}

/// <summary>A partition cannot be rebuilt from what is stored: it is not served (nothing is applied or acknowledged).</summary>
internal sealed class UnrestorableException(string message) : Exception(message);
