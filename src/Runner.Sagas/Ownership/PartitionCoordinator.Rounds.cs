using NATS.Client.Core;
using NATS.Client.KeyValueStore;
using Runner.Core.Ids;

namespace Runner.Sagas.Ownership;

internal sealed partial class PartitionCoordinator
{
    private long _lastHeartbeat = long.MinValue;
    private long _lastRefresh = long.MinValue;

    /// <summary>A lease that may be taken, and why.</summary>
    private sealed record Candidate(string Key, PartitionId? Partition, string? Stream, NatsKVEntry<byte[]>? Entry, LeaseRecord? Previous, int Rank, bool ReleasedRecently);

    /// <summary>One round: heartbeat and renew when due, then hand over or take leases. Returns how long to sleep.</summary>
    private async Task<TimeSpan> RoundAsync(CancellationToken cancellationToken)
    {
        foreach (var (key, lease) in _owned)
        {
            if (lease.IsLost && !_handingOver.ContainsKey(key))
            {
                _owned.TryRemove(key, out _);
            }
        }
        // Renewals first: a heartbeat that fails must not cost a lease.
        var nextRenewal = await RenewAsync(cancellationToken);
        if (_time.GetElapsedTime(_lastHeartbeat) >= Tick || _lastHeartbeat == long.MinValue)
        {
            await HeartbeatAsync(cancellationToken);
        }
        if (_leaving)
        {
            return nextRenewal < Tick ? nextRenewal : Tick;
        }
        if (_lastRefresh == long.MinValue || _time.GetElapsedTime(_lastRefresh) >= _lease)
        {
            // The watch is the fast path; this read is the safety net should it stall (a server
            // lost mid-watch): a stale view could never take a partition, only miss one.
            foreach (var entry in await _bucket.ReadAllAsync(cancellationToken))
            {
                Apply(entry);
            }
            _lastRefresh = _time.GetTimestamp();
        }
        var streams = _host.TriggerStreams;
        var (liveOthers, counts, partitionFree, routerFree, expiry) = Survey(streams);
        var live = liveOthers.Count + 1;

        var mine = Held(partitions: true);
        Rebalance(mine, liveOthers.Select(w => counts.GetValueOrDefault(w)).ToList(), live, _partitions, partitionFree, partitions: true, cancellationToken);
        if (_takePartitions)
        {
            await AcquireAsync(partitionFree, Balance.ToAcquire(_partitions, mine, live), Balance.Hungry(_partitions, mine, live), live, cancellationToken);
        }

        var routers = Held(partitions: false);
        Rebalance(routers, liveOthers.Select(w => counts.GetValueOrDefault(RouterCountKey(w))).ToList(), live, streams.Count, routerFree, partitions: false, cancellationToken);
        await AcquireAsync(routerFree, Balance.ToAcquire(streams.Count, routers, live), Balance.Hungry(streams.Count, routers, live), live, cancellationToken);
        var sleep = expiry < Tick ? expiry : Tick;
        return nextRenewal < sleep ? nextRenewal : sleep;
    }

    /// <summary>Partition (or router) leases held and not on their way out.</summary>
    private int Held(bool partitions) =>
        _owned.Values.Count(l => (l.Partition is not null) == partitions && !l.IsLost && !_handingOver.ContainsKey(l.Key));

    private static string RouterCountKey(string worker) => "router:" + worker;

    private void Rebalance(int mine, List<int> others, int live, int total, List<Candidate> free, bool partitions, CancellationToken cancellationToken)
    {
        // Only give away what someone can take: nobody else alive means nothing to balance with.
        if (live <= 1 || total == 0)
        {
            return;
        }
        // Released leases nobody has taken yet are already on their way to a replica below its share.
        var release = Balance.ToRelease(total, mine, others) - free.Count(c => c.Rank == 2);
        if (release <= 0)
        {
            return;
        }
        var surplus = _owned.Values.Where(l => (l.Partition is not null) == partitions && !l.IsLost && !_handingOver.ContainsKey(l.Key))
            .OrderByDescending(l => l.Acquired).Take(release);
        foreach (var lease in surplus)
        {
            StartHandOver(lease, $"balance: {mine} held, {live} live replicas", cancellationToken);
        }
    }

    private (List<string> LiveOthers, Dictionary<string, int> Counts, List<Candidate> PartitionFree, List<Candidate> RouterFree, TimeSpan NextExpiry) Survey(IReadOnlyList<string> streams)
    {
        var liveOthers = new List<string>();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var partitionFree = new List<Candidate>();
        var routerFree = new List<Candidate>();
        var next = Tick;
        lock (_gate)
        {
            foreach (var (key, (entry, _, member)) in _view)
            {
                if (member is null || string.Equals(member.Worker, Worker, StringComparison.Ordinal))
                {
                    continue;
                }
                var lease = TimeSpan.FromMilliseconds(member.LeaseMs);
                var unmoved = _clock.Unmoved(key, entry.Revision);
                if (unmoved < lease && !member.Leaving)
                {
                    liveOthers.Add(member.Worker);
                }
            }
            for (var p = 0; p < _partitions; p++)
            {
                var partition = new PartitionId(p);
                var key = OwnershipBucket.PartitionKey(partition);
                Classify(key, partition, null, counts, partitionFree, ref next, owner => owner);
            }
            foreach (var stream in streams)
            {
                Classify(OwnershipBucket.RouterKey(stream), null, stream, counts, routerFree, ref next, RouterCountKey);
            }
        }
        return (liveOthers, counts, partitionFree, routerFree, next);
    }

    private void Classify(string key, PartitionId? partition, string? stream, Dictionary<string, int> counts, List<Candidate> free, ref TimeSpan next, Func<string, string> countKey)
    {
        if (_owned.TryGetValue(key, out var held) && !held.IsLost)
        {
            return;
        }
        if (!_view.TryGetValue(key, out var seen))
        {
            free.Add(new Candidate(key, partition, stream, null, null, 3, false));
            return;
        }
        var (entry, record, _) = seen;
        var unmoved = _clock.Unmoved(key, entry.Revision);
        if (record is null)
        {
            free.Add(new Candidate(key, partition, stream, entry, null, 3, false)); // unreadable: overwritten with a higher epoch
            return;
        }
        if (record.State == LeaseRecord.Released)
        {
            free.Add(new Candidate(key, partition, stream, entry, record, 2, unmoved < Tick));
            return;
        }
        if (string.Equals(record.Owner, Worker, StringComparison.Ordinal))
        {
            // This worker's previous run, or this run's own lease that it fenced (it could not
            // renew in time, and its work has stopped): taken back at once with the next epoch.
            free.Add(new Candidate(key, partition, stream, entry, record, 0, false));
            return;
        }
        var lease = TimeSpan.FromMilliseconds(record.LeaseMs);
        if (unmoved >= lease)
        {
            free.Add(new Candidate(key, partition, stream, entry, record, 1, false));
            return;
        }
        var left = lease - unmoved + TimeSpan.FromMilliseconds(5);
        next = left < next ? left : next;
        if (record.Owner is { } owner)
        {
            counts[countKey(owner)] = counts.GetValueOrDefault(countKey(owner)) + 1;
        }
    }

    private async Task AcquireAsync(List<Candidate> free, int wanted, bool hungry, int live, CancellationToken cancellationToken)
    {
        foreach (var candidate in free.OrderBy(c => c.Rank).ThenBy(c => c.Key, StringComparer.Ordinal))
        {
            // A drain began during this round: take nothing more (it waits for this round to end).
            if (_leaving)
            {
                return;
            }
            // A lease that ran out (or this worker's own, fenced or from its previous run) is
            // nobody's: take it even above the share — its owner's heartbeat may not have gone
            // stale yet, and balance gives the surplus back once it does.
            if (wanted <= 0 && candidate.Rank > 1)
            {
                return;
            }
            // A partition just released is meant for a replica below its share; the others wait a tick.
            if (candidate.ReleasedRecently && !hungry && live > 1)
            {
                continue;
            }
            if (live > 1 && _releasedByMe.TryGetValue(candidate.Key, out var releasedAt) && _time.GetElapsedTime(releasedAt) < _lease)
            {
                continue;
            }
            if (await TryAcquireAsync(candidate, cancellationToken))
            {
                wanted--;
            }
        }
    }

    private async Task<bool> TryAcquireAsync(Candidate candidate, CancellationToken cancellationToken)
    {
        if (BeforeAcquire is { } hook)
        {
            await hook(candidate.Key, cancellationToken);
        }
        var previous = candidate.Previous;
        // An unreadable record's epoch is unknown, but an epoch never exceeds its key's revision.
        var epoch = (previous?.Epoch ?? (long)(candidate.Entry?.Revision ?? 0)) + 1;
        var record = new LeaseRecord
        {
            State = LeaseRecord.Held,
            Owner = Worker,
            Incarnation = Incarnation,
            Epoch = epoch,
            LeaseMs = (long)_lease.TotalMilliseconds,
            Checkpoint = previous?.Checkpoint ?? 0,
            StreamCreatedMs = previous?.StreamCreatedMs ?? 0,
            Snapshots = previous?.Snapshots ?? [],
            Versions = previous?.Versions ?? [],
            PurgedBelow = previous?.PurgedBelow ?? 0,
            WrittenAtMs = _time.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        var sent = _time.GetTimestamp();
        var revision = candidate.Entry is { } entry
            ? await _bucket.TryUpdateAsync(candidate.Key, record, entry.Revision, cancellationToken)
            : await _bucket.TryCreateAsync(candidate.Key, record, cancellationToken);
        if (revision is null)
        {
            // Another replica was quicker, or the view is behind: read the key as it is now.
            if (await _bucket.GetEntryAsync(candidate.Key, cancellationToken) is { } current)
            {
                Apply(current);
            }
            return false;
        }
        var lease = new OwnedLease(_bucket, candidate.Key, candidate.Partition, record, revision.Value, sent, _time, _logger);
        _owned[candidate.Key] = lease;
        _releasedByMe.TryRemove(candidate.Key, out _);
        OwnershipTelemetry.OwnershipChanges.Add(1, new KeyValuePair<string, object?>(OwnershipTelemetry.KindTag, candidate.Partition is null ? "router" : "partition"));
        OwnershipLog.Acquired(_logger, candidate.Key, epoch, previous?.Owner ?? "-", previous?.State ?? "absent", previous?.Epoch ?? 0);
        if (candidate.Partition is not null)
        {
            _host.PartitionAcquired(lease);
        }
        else
        {
            _host.RouterAcquired(lease, candidate.Stream!);
        }
        return true;
    }

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        await _bucket.PutMemberAsync(new MemberRecord
        {
            Worker = Worker,
            Incarnation = Incarnation,
            LeaseMs = (long)_lease.TotalMilliseconds,
            Leaving = _leaving,
            WrittenAtMs = _time.GetUtcNow().ToUnixTimeMilliseconds(),
        }, cancellationToken);
        _lastHeartbeat = _time.GetTimestamp();
    }

    /// <summary>Renews every lease a third of a lease after its last write; returns how long until the next one is due.</summary>
    private async Task<TimeSpan> RenewAsync(CancellationToken cancellationToken)
    {
        var held = _owned.Values.Where(l => !l.IsLost).ToList();
        var due = held.Where(l => _time.GetElapsedTime(l.LastWritten) >= Tick).ToList();
        await Task.WhenAll(due.Select(lease => lease.UpdateAsync(r => WithProgress(lease, r), cancellationToken)));
        var next = Tick;
        foreach (var lease in held.Where(l => !l.IsLost))
        {
            var left = Tick - _time.GetElapsedTime(lease.LastWritten);
            next = left < next ? left : next;
        }
        return next > TimeSpan.FromMilliseconds(10) ? next : TimeSpan.FromMilliseconds(10);
    }

    /// <summary>
    /// The record with this owner's progress written in: a partition's checkpoint only rises; a
    /// router's rises too, unless its trigger stream was created again since (sequences start over).
    /// </summary>
    private LeaseRecord WithProgress(OwnedLease lease, LeaseRecord record)
    {
        if (lease.Partition is { } partition)
        {
            return record with { Checkpoint = Math.Max(record.Checkpoint, _host.Checkpoint(partition)) };
        }
        if (lease.Routed is not { } progress)
        {
            return record;
        }
        return record with
        {
            Checkpoint = progress.StreamCreatedMs == record.StreamCreatedMs ? Math.Max(record.Checkpoint, progress.Routed) : progress.Routed,
            StreamCreatedMs = progress.StreamCreatedMs,
        };
    }

    private void StartHandOver(OwnedLease lease, string reason, CancellationToken cancellationToken)
    {
        var task = new Task<Task>(() => HandOverAsync(lease, reason, cancellationToken));
        if (!_handingOver.TryAdd(lease.Key, task.Unwrap()))
        {
            return;
        }
        task.Start(TaskScheduler.Default);
    }

    private async Task HandOverAsync(OwnedLease lease, string reason, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        OwnershipLog.HandingOver(_logger, lease.Key, lease.Epoch, reason);
        try
        {
            ulong checkpoint = 0;
            if (lease.Partition is not null)
            {
                checkpoint = await _host.HandOverPartitionAsync(lease, cancellationToken);
            }
            else
            {
                await _host.HandOverRouterAsync(lease, cancellationToken);
            }
            var released = await lease.UpdateAsync(r =>
            {
                var progressed = WithProgress(lease, r);
                return progressed with
                {
                    State = LeaseRecord.Released,
                    Owner = null,
                    Incarnation = null,
                    Checkpoint = Math.Max(progressed.Checkpoint, checkpoint),
                };
            }, cancellationToken);
            if (!released)
            {
                OwnershipLog.HandOverFailed(_logger, lease.Key, lease.FencedBecause ?? "the release was not written");
            }
            else
            {
                var ms = _time.GetElapsedTime(started).TotalMilliseconds;
                OwnershipLog.Released(_logger, lease.Key, lease.Epoch, checkpoint, ms);
                OwnershipTelemetry.HandOverDuration.Record(ms, new KeyValuePair<string, object?>(OwnershipTelemetry.KindTag, lease.Partition is null ? "router" : "partition"));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping: the stop releases what is left
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException or OperationCanceledException)
        {
            OwnershipLog.HandOverFailed(_logger, lease.Key, ex.Message);
        }
        finally
        {
            lease.Cancel();
            _releasedByMe[lease.Key] = _time.GetTimestamp();
            _owned.TryRemove(lease.Key, out _);
            _handingOver.TryRemove(lease.Key, out _);
            Wake();
        }
    }

    /// <summary>Takes no new lease from now on (the first, synchronous step of <see cref="LeaveAsync"/>).</summary>
    public void BeginLeaving() => _leaving = true;

    /// <summary>
    /// Drain: stop taking leases, mark this replica leaving (others balance without it), hand over
    /// every partition and router, and remove the heartbeat.
    /// </summary>
    public async Task LeaveAsync(CancellationToken cancellationToken)
    {
        _leaving = true;
        // A round that began before may still be taking leases: let it finish, so that what it takes is
        // handed over below. Every later round sees _leaving and takes nothing.
        await _round.WaitAsync(cancellationToken);
        _round.Release();
        try
        {
            await HeartbeatAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            OwnershipLog.RoundFailed(_logger, 0, ex.Message);
        }
        var partitions = 0;
        var routers = 0;
        foreach (var lease in _owned.Values.Where(l => !l.IsLost))
        {
            _ = lease.Partition is null ? routers++ : partitions++;
            StartHandOver(lease, "this replica is leaving", cancellationToken);
        }
        await Task.WhenAll(_handingOver.Values);
        try
        {
            await _bucket.DeleteMemberAsync(Worker, cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            OwnershipLog.RoundFailed(_logger, 0, ex.Message);
        }
        OwnershipLog.Left(_logger, partitions, routers);
    }

    /// <summary>Undoes <see cref="LeaveAsync"/>: this replica takes its share again.</summary>
    public void Rejoin()
    {
        _leaving = false;
        _releasedByMe.Clear();
        _lastHeartbeat = long.MinValue;
        Wake();
    }

    /// <summary>
    /// On stop without a drain: releases what is still held (its loops have stopped) so another
    /// replica, or this worker's next run, takes it at once instead of after the lease.
    /// </summary>
    public async Task ReleaseAllAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_owned.Values.Where(l => !l.IsLost).Select(async lease =>
        {
            try
            {
                await lease.UpdateAsync(r => WithProgress(lease, r) with
                {
                    State = LeaseRecord.Released,
                    Owner = null,
                    Incarnation = null,
                }, cancellationToken);
            }
#pragma warning disable CA1031 // Best effort on the way out: whatever fails, the lease simply runs out.
            catch (Exception)
#pragma warning restore CA1031
            {
                // out of time or NATS gone: the lease runs out instead
            }
            lease.Cancel();
        }));
        _owned.Clear();
        try
        {
            await _bucket.DeleteMemberAsync(Worker, cancellationToken);
        }
#pragma warning disable CA1031 // Best effort on the way out: the heartbeat goes stale instead.
        catch (Exception)
#pragma warning restore CA1031
        {
            // it goes stale instead
        }
    }
}
