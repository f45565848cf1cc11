using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;
using Runner.Core.Ids;
using Runner.Sagas.Ownership;
using Runner.Sagas.Partitions;
using Runner.Storage;

namespace Runner.Sagas.Snapshots;

/// <summary>
/// Stores an owned partition's snapshot every <see cref="SagaRuntimeOptions.SnapshotInterval"/>
/// (when its checkpoint moved) and at hand-over, then purges its inbox below the older of the two
/// snapshots the lease record keeps. Every step outside this replica's disk is fenced by the
/// lease: the object is referenced only by a compare-and-set of the lease record, and the purge
/// only reaches below a snapshot so referenced. With <paramref name="purge"/> false (a replicated
/// inbox on a server that replays purges as compactions when it restarts) the inbox is neither
/// marked purgeable nor purged: a restore can always replay it from the start. Each object is
/// stamped with the inbox it covers (<paramref name="inboxCreated"/>, see <see cref="SnapshotStore.InboxStamp"/>).
/// </summary>
internal sealed class PartitionSnapshots(
    INatsJSContext js,
    LmdbStore store,
    SnapshotStore objects,
    SagaRuntimeOptions options,
    OwnedLease lease,
    Func<ulong> checkpoint,
    byte[] checkpointKey,
    DateTimeOffset inboxCreated,
    bool purge,
    SnapshotCaptures captures,
    ILogger logger,
    TimeProvider time)
{
    private readonly PartitionId _partition = lease.Partition!.Value;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The inbox sequence the newest stored snapshot covers.</summary>
    public ulong Latest => lease.Record.Snapshots.Count > 0 ? lease.Record.Snapshots[0].Sequence : 0;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var interval = options.SnapshotInterval > TimeSpan.Zero ? options.SnapshotInterval : TimeSpan.FromMilliseconds(50);
        using (var sweep = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            sweep.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                await SweepAsync(sweep.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // left for the next owner
            }
        }
        var wait = FirstWait(interval, _partition, options.Partitions);
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(wait, time, cancellationToken);
            wait = interval;
            if (checkpoint() > Latest)
            {
                await TakeAsync(cancellationToken);
            }
        }
    }

    /// <summary>
    /// How long a partition waits for its first snapshot after it is taken. A replica takes its
    /// partitions at about the same moment, and each capture is a burst of CPU as long as the
    /// partition is large: the first snapshots are spread over one interval after the first, by
    /// partition, so that a replica's snapshots come due one at a time rather than all at once.
    /// </summary>
    internal static TimeSpan FirstWait(TimeSpan interval, PartitionId partition, int partitions)
    {
        partitions = Math.Max(1, partitions);
        return interval + TimeSpan.FromTicks(interval.Ticks / partitions * (partition.Value % partitions));
    }

    /// <summary>Stores a snapshot unless the newest one already covers the checkpoint. Returns false when it could not be stored.</summary>
    public Task<bool> TakeAsync(CancellationToken cancellationToken) => TakeAsync(handOver: false, cancellationToken);

    /// <summary>As <see cref="TakeAsync(CancellationToken)"/> at a hand-over: captured at once rather than in turn with the replica's other snapshots.</summary>
    public Task<bool> TakeForHandOverAsync(CancellationToken cancellationToken) => TakeAsync(handOver: true, cancellationToken);

    private async Task<bool> TakeAsync(bool handOver, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return await TakeLockedAsync(handOver, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<bool> TakeLockedAsync(bool handOver, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        // The newest image the lease record names (this owner's last, or its predecessor's) sizes the next one's room.
        var expected = lease.Record.Snapshots.Count > 0 ? (int)Math.Clamp(lease.Record.Snapshots[0].Bytes, 0, 1L << 30) : 0;
        var image = await captures.RunAsync(() => SnapshotCodec.Capture(store, _partition, lease.Epoch, checkpointKey, expected), takeTurn: !handOver, cancellationToken);
        if (image.Sequence <= Latest)
        {
            return true;
        }
        var name = SnapshotStore.Name(_partition, image.Sequence, image.Epoch);
        try
        {
            await objects.PutAsync(name, image.Bytes, inboxCreated, cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or NatsObjException or TimeoutException)
        {
            OwnershipLog.SnapshotFailed(logger, _partition.Value, ex.Message);
            return false;
        }
        var reference = new SnapshotRef
        {
            Name = name,
            Sequence = image.Sequence,
            Epoch = image.Epoch,
            Bytes = image.Bytes.Length,
            Records = image.Records,
            Instances = image.Instances,
            Sha256 = image.Sha256,
            AtMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        var before = lease.Record.Snapshots;
        var referenced = await lease.UpdateAsync(r => Reference(r, reference, purge), cancellationToken);
        if (!referenced)
        {
            // Only a lease certainly lost proves the reference was not written (a write whose
            // reply was lost may have been applied): otherwise the next owner's sweep decides.
            if (lease.IsLost)
            {
                await DeleteQuietlyAsync(name, cancellationToken);
            }
            OwnershipLog.SnapshotFailed(logger, _partition.Value, lease.FencedBecause ?? "the lease record was not updated");
            return false;
        }
        var ms = time.GetElapsedTime(started).TotalMilliseconds;
        OwnershipTelemetry.Snapshots.Add(1);
        OwnershipTelemetry.SnapshotDuration.Record(ms);
        OwnershipLog.SnapshotWritten(logger, _partition.Value, image.Epoch, name, image.Sequence, image.Records, image.Bytes.Length, ms);
        var kept = lease.Record.Snapshots.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var dropped in before.Where(s => !kept.Contains(s.Name)))
        {
            await DeleteQuietlyAsync(dropped.Name, cancellationToken);
        }
        await PurgeAsync(cancellationToken);
        return true;
    }

    /// <summary>
    /// The record with <paramref name="reference"/> as its newest snapshot, the previous newest as
    /// fallback, the inbox marked purgeable below the fallback, and versions no later message needs
    /// dropped; with <paramref name="purge"/> false, the snapshots alone.
    /// </summary>
    internal static LeaseRecord Reference(LeaseRecord record, SnapshotRef reference, bool purge = true)
    {
        if (record.Snapshots.Any(s => string.Equals(s.Name, reference.Name, StringComparison.Ordinal)))
        {
            return record;
        }
        var kept = new List<SnapshotRef> { reference };
        kept.AddRange(record.Snapshots.Take(1));
        var purgedBelow = purge && kept.Count > 1 ? Math.Max(record.PurgedBelow, kept[^1].Sequence + 1) : record.PurgedBelow;
        return record with
        {
            Snapshots = kept,
            PurgedBelow = purgedBelow,
            // Only what the purge put beyond any replay: with nothing purged, a replay from the
            // start (no usable snapshot) still needs every version.
            Versions = purgedBelow > 1 ? PartitionVersions.Trim(record.Versions, purgedBelow - 1) : record.Versions,
        };
    }

    /// <summary>Deletes the partition's objects the lease record does not reference (any a fenced owner left); run once a partition is taken.</summary>
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        try
        {
            var keep = lease.Record.Snapshots.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var name in await objects.NamesAsync(_partition, cancellationToken))
            {
                if (!keep.Contains(name))
                {
                    await objects.DeleteAsync(name, cancellationToken);
                }
            }
        }
        catch (Exception ex) when (ex is NatsException or NatsObjException or TimeoutException)
        {
            OwnershipLog.SnapshotFailed(logger, _partition.Value, $"old snapshots not removed yet: {ex.Message}");
        }
    }

    private async Task PurgeAsync(CancellationToken cancellationToken)
    {
        var below = lease.Record.PurgedBelow;
        if (!purge || below <= 1 || lease.IsLost)
        {
            return;
        }
        try
        {
            await js.PurgeStreamAsync(options.JetStream.Streams.Inbox,
                new StreamPurgeRequest { Filter = Core.Subjects.Subjects.Inbox(_partition), Seq = below }, cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            SagasLog.InboxPurgeFailed(logger, _partition.Value, ex.Message);
        }
    }

    private async Task DeleteQuietlyAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await objects.DeleteAsync(name, cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or NatsObjException or TimeoutException)
        {
            // swept by a later owner
        }
    }
}
