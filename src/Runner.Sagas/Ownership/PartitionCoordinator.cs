using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;
using Runner.Core.Ids;

namespace Runner.Sagas.Ownership;

/// <summary>What the coordinator asks of the saga runtime.</summary>
internal interface IOwnershipHost
{
    /// <summary>Starts a newly acquired partition (restore, then its loops) under <see cref="OwnedLease.Lost"/>; returns at once.</summary>
    void PartitionAcquired(OwnedLease lease);

    /// <summary>
    /// Cooperative hand-over: stop taking the partition's work, finish the batch in hand, flush its
    /// outbox and store a snapshot. Returns the final checkpoint; the lease is still held.
    /// </summary>
    Task<ulong> HandOverPartitionAsync(OwnedLease lease, CancellationToken cancellationToken);

    /// <summary>Starts the router of <paramref name="stream"/> under <see cref="OwnedLease.Lost"/>.</summary>
    void RouterAcquired(OwnedLease lease, string stream);

    /// <summary>Stops the router after the batch in hand.</summary>
    Task HandOverRouterAsync(OwnedLease lease, CancellationToken cancellationToken);

    /// <summary>Trigger streams that need a router now.</summary>
    IReadOnlyList<string> TriggerStreams { get; }

    /// <summary>The partition's committed checkpoint, written into each renewal.</summary>
    ulong Checkpoint(PartitionId partition);
}

/// <summary>
/// Membership, leases and balance for one replica. It heartbeats its member key, watches the
/// bucket (noting when each revision was first seen: <see cref="RevisionClock"/>), renews its
/// leases every third of the lease, hands over partitions above its share and takes free, released
/// or run-out ones up to ceil(P / live replicas); routers are leased the same way, one per trigger
/// stream.
/// </summary>
internal sealed partial class PartitionCoordinator
{
    private readonly OwnershipBucket _bucket;
    private readonly IOwnershipHost _host;
    private readonly int _partitions;
    private readonly TimeSpan _lease;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly RevisionClock _clock;
    private readonly ConcurrentDictionary<string, OwnedLease> _owned = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Task> _handingOver = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (NatsKVEntry<byte[]> Entry, LeaseRecord? Lease, MemberRecord? Member)> _view = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _releasedByMe = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    // Held for each round: a drain waits for the round in flight, so it also hands over what that round took.
    private readonly SemaphoreSlim _round = new(1, 1);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _takePartitions;
    private volatile bool _leaving;

    public PartitionCoordinator(OwnershipBucket bucket, IOwnershipHost host, int partitions, TimeSpan lease, string worker, ILogger logger, TimeProvider time, bool takePartitions = true)
    {
        _takePartitions = takePartitions;
        _bucket = bucket;
        _host = host;
        _partitions = partitions;
        _lease = lease;
        Worker = worker;
        _logger = logger;
        _time = time;
        _clock = new RevisionClock(time);
    }

    public string Worker { get; }

    /// <summary>This process's run: a later process with the same worker id takes its leases back at once.</summary>
    public string Incarnation { get; } = Guid.NewGuid().ToString("N");

    public string Bucket => _bucket.Bucket;

    /// <summary>Test hook: awaited before each attempt to take a lease.</summary>
    internal Func<string, CancellationToken, Task>? BeforeAcquire { get; init; }

    private readonly TaskCompletionSource _firstRound = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Done once a round has completed: this replica has taken what it could take at its start.</summary>
    public Task FirstRound => _firstRound.Task;

    private TimeSpan Tick => _lease / 3;

    /// <summary>Leases held now.</summary>
    public IReadOnlyList<OwnedLease> Owned => [.. _owned.Values.Where(l => !l.IsLost)];

    /// <summary>What this replica holds and how it sees the others, in a line each: for a stuck balance.</summary>
    public string Describe()
    {
        var lines = new List<string>
        {
            $"{Worker}: leaving={_leaving} held=[{string.Join(",", _owned.Values.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + (l.IsLost ? "(lost)" : "") + (_handingOver.ContainsKey(l.Key) ? "(handing over)" : "")))}]",
        };
        lock (_gate)
        {
            foreach (var (key, (entry, lease, member)) in _view.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                var unmoved = _clock.Unmoved(key, entry.Revision).TotalMilliseconds;
                var what = member is not null ? $"member {member.Worker} leaving={member.Leaving}"
                    : lease is not null ? $"{lease.State} owner={lease.Owner ?? "-"} epoch={lease.Epoch}"
                    : "unreadable";
                lines.Add($"  {key} rev={entry.Revision} unmoved={unmoved:0}ms {what}");
            }
        }
        return string.Join(Environment.NewLine, lines);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watch = Task.Run(() => WatchAsync(watching.Token), CancellationToken.None);
        try
        {
            await RoundsAsync(cancellationToken);
        }
        finally
        {
            await watching.CancelAsync();
            await watch;
        }
    }

    private async Task RoundsAsync(CancellationToken cancellationToken)
    {
        OwnershipLog.Joined(_logger, Worker, _bucket.Bucket, _lease.TotalMilliseconds);
        try
        {
            // Decide only once the bucket's current state is known (or after a tick without it).
            try
            {
                await _synced.Task.WaitAsync(Tick, _time, cancellationToken);
            }
            catch (TimeoutException)
            {
                // NATS is slow or away: the rounds go on with what is known (every write is compare-and-set)
            }
            var backoff = TimeSpan.FromMilliseconds(200);
            while (!cancellationToken.IsCancellationRequested)
            {
                TimeSpan sleep;
                try
                {
                    await _round.WaitAsync(cancellationToken);
                    try
                    {
                        sleep = await RoundAsync(cancellationToken);
                    }
                    finally
                    {
                        _round.Release();
                    }
                    _firstRound.TrySetResult();
                    backoff = TimeSpan.FromMilliseconds(200);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
#pragma warning disable CA1031 // A round that fails for any reason (a request timing out included) is retried; leases still fence on time.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    OwnershipLog.RoundFailed(_logger, backoff.TotalMilliseconds, ex.Message);
                    sleep = backoff;
                    backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, Tick.TotalMilliseconds));
                }
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(sleep);
                try
                {
                    await _wake.WaitAsync(timeout.Token);
                    // Let a burst of changes settle into one round.
                    await Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // the sleep ran out
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    /// <summary>Wakes the loop for a round now (a partition was lost, streams changed).</summary>
    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // already awake
        }
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var entry in _bucket.WatchAsync(cancellationToken))
                {
                    Apply(entry);
                    if (entry.Delta == 0)
                    {
                        _synced.TrySetResult();
                    }
                    backoff = TimeSpan.FromMilliseconds(200);
                    Wake();
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The watch must survive any client or server error; it logs and watches again.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                OwnershipLog.WatchFailed(_logger, backoff.TotalMilliseconds, ex.Message);
                try
                {
                    await Task.Delay(backoff, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5_000));
            }
        }
    }

    private void Apply(NatsKVEntry<byte[]> entry)
    {
        lock (_gate)
        {
            if (entry.Operation is NatsKVOperation.Del or NatsKVOperation.Purge)
            {
                _view.Remove(entry.Key);
                _clock.Forget(entry.Key);
                return;
            }
            LeaseRecord? lease = null;
            MemberRecord? member = null;
            if (entry.Key.StartsWith(OwnershipBucket.MemberPrefix, StringComparison.Ordinal))
            {
                member = OwnershipBucket.Parse(entry.Value, OwnershipJsonContext.Default.MemberRecord);
            }
            else if (entry.Key.StartsWith(OwnershipBucket.PartitionPrefix, StringComparison.Ordinal) || entry.Key.StartsWith(OwnershipBucket.RouterPrefix, StringComparison.Ordinal))
            {
                lease = OwnershipBucket.Parse(entry.Value, OwnershipJsonContext.Default.LeaseRecord);
            }
            _view[entry.Key] = (entry, lease, member);
            _clock.Observe(entry.Key, entry.Revision);
        }
    }
}
