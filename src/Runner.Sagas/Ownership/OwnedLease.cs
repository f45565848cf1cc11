using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using Runner.Core.Ids;

namespace Runner.Sagas.Ownership;

/// <summary>
/// A lease this replica holds (a partition's or a router's) at one epoch. Every write is a
/// compare-and-set on the revision last written, so once another replica has taken it over every
/// later write fails and the lease is fenced. It is also fenced by time: when it could not be
/// renewed for a lease less a margin since the last renewal was sent, <see cref="Lost"/> is
/// cancelled before any other replica can judge the lease run out.
/// </summary>
internal sealed class OwnedLease : IDisposable
{
    private readonly OwnershipBucket _bucket;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _deadline;
    private LeaseRecord _record;
    private ulong _revision;
    private string? _fencedBecause;
    private RouterProgress? _routed;

    public OwnedLease(OwnershipBucket bucket, string key, PartitionId? partition, LeaseRecord record, ulong revision, long sentAt, TimeProvider time, ILogger logger)
    {
        _bucket = bucket;
        Key = key;
        Partition = partition;
        _record = record;
        _revision = revision;
        _time = time;
        _logger = logger;
        Acquired = time.GetTimestamp();
        _deadline = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        _deadline.Token.Register(() => Fence("its lease could not be renewed in time"));
        Extend(sentAt);
    }

    public string Key { get; }

    /// <summary>The partition, for a partition lease; null for a router's.</summary>
    public PartitionId? Partition { get; }

    public long Epoch => _record.Epoch;

    public TimeSpan Lease => TimeSpan.FromMilliseconds(_record.LeaseMs);

    /// <summary>Monotonic timestamp of the acquisition.</summary>
    public long Acquired { get; }

    /// <summary>The record as last written by this replica.</summary>
    public LeaseRecord Record => Volatile.Read(ref _record);

    public ulong Revision => Volatile.Read(ref _revision);

    /// <summary>Cancelled when the lease is lost, fenced or released: everything done under it stops.</summary>
    public CancellationToken Lost => _lost.Token;

    public bool IsLost => _lost.IsCancellationRequested;

    public string? FencedBecause => Volatile.Read(ref _fencedBecause);

    /// <summary>
    /// A router lease's progress as its router last reported it (null: none yet): written into each
    /// renewal and the release, so whoever holds the lease next resumes after it.
    /// </summary>
    public RouterProgress? Routed => Volatile.Read(ref _routed);

    public void ReportRouted(RouterProgress progress) => Volatile.Write(ref _routed, progress);

    /// <summary>Monotonic timestamp until which the lease is certainly ours.</summary>
    public long ValidUntil { get; private set; }

    /// <summary>Monotonic timestamp at which the last successful write was sent.</summary>
    public long LastWritten { get; private set; }

    /// <summary>
    /// Applies <paramref name="change"/> to the record with compare-and-set. A change must be
    /// idempotent: when a write of ours was applied but its reply lost, the record read back is
    /// ours, adopted, and the change applied to it again. Returns false when it was not written
    /// (the lease was lost — then it is fenced — or NATS did not answer).
    /// </summary>
    public async Task<bool> UpdateAsync(Func<LeaseRecord, LeaseRecord> change, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            for (var round = 0; round < 3 && !IsLost; round++)
            {
                var sent = _time.GetTimestamp();
                var next = change(_record) with { WrittenAtMs = _time.GetUtcNow().ToUnixTimeMilliseconds() };
                ulong? revision;
                try
                {
                    revision = await _bucket.TryUpdateAsync(Key, next, _revision, cancellationToken);
                }
                catch (Exception ex) when (ex is NatsException or TimeoutException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    OwnershipLog.LeaseWriteFailed(_logger, Key, _record.Epoch, ex.Message);
                    return false;
                }
                if (revision is { } written)
                {
                    Volatile.Write(ref _record, next);
                    Volatile.Write(ref _revision, written);
                    Extend(sent);
                    return true;
                }
                (LeaseRecord Record, ulong Revision)? current;
                try
                {
                    current = await _bucket.GetLeaseAsync(Key, cancellationToken);
                }
                catch (Exception ex) when (ex is NatsException or TimeoutException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    OwnershipLog.LeaseWriteFailed(_logger, Key, _record.Epoch, ex.Message);
                    return false;
                }
                if (current is not { } entry || !IsOurs(entry.Record))
                {
                    Fence(current is { } other ? $"taken by {other.Record.Owner ?? "nobody"} at epoch {other.Record.Epoch}" : "its key was deleted");
                    return false;
                }
                Volatile.Write(ref _record, entry.Record);
                Volatile.Write(ref _revision, entry.Revision);
            }
            return false;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Whether the stored record is this lease: same owner run and epoch, still held.</summary>
    public bool IsOurs(LeaseRecord stored) =>
        stored.State == LeaseRecord.Held && stored.Epoch == _record.Epoch
        && string.Equals(stored.Owner, _record.Owner, StringComparison.Ordinal)
        && string.Equals(stored.Incarnation, _record.Incarnation, StringComparison.Ordinal);

    /// <summary>Reads the key and fences the lease unless it is still ours (after attaching a consumer).</summary>
    public async Task<bool> VerifyAsync(CancellationToken cancellationToken)
    {
        var current = await _bucket.GetLeaseAsync(Key, cancellationToken);
        if (current is { } entry && IsOurs(entry.Record))
        {
            return true;
        }
        Fence(current is { } other ? $"taken by {other.Record.Owner ?? "nobody"} at epoch {other.Record.Epoch}" : "its key was deleted");
        return false;
    }

    /// <summary>Stops everything done under this lease, for <paramref name="reason"/>.</summary>
    public void Fence(string reason)
    {
        if (IsLost || Interlocked.CompareExchange(ref _fencedBecause, reason, null) is not null)
        {
            return;
        }
        OwnershipLog.Fenced(_logger, Key, _record.Epoch, reason);
        Cancel();
    }

    /// <summary>Marks the lease given up on purpose (released): no fencing log line.</summary>
    public void Cancel()
    {
        try
        {
            _deadline.CancelAfter(Timeout.InfiniteTimeSpan);
            _lost.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // already disposed with the runtime
        }
    }

    private void Extend(long sentAt)
    {
        if (IsLost)
        {
            return;
        }
        // Others start counting no earlier than the write reached the server, which is after it
        // was sent: stopping a fifth of a lease before sentAt + lease leaves room for the stop itself.
        LastWritten = sentAt;
        var lease = Lease;
        var valid = lease - (lease / 5);
        ValidUntil = sentAt + (long)(valid.TotalSeconds * _time.TimestampFrequency);
        var left = valid - _time.GetElapsedTime(sentAt);
        try
        {
            _deadline.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }
        catch (ObjectDisposedException)
        {
            // disposed
        }
    }

    public void Dispose()
    {
        _deadline.Dispose();
        _lost.Dispose();
        _gate.Dispose();
    }
}

/// <summary>The last trigger sequence a router routed, in the trigger stream created at <paramref name="StreamCreatedMs"/> (Unix ms).</summary>
internal sealed record RouterProgress(ulong Routed, long StreamCreatedMs);
