using System.Diagnostics;

namespace Runner.Bench.ScaleOut;

internal sealed partial class ScaleOutBench
{
    private static readonly TimeSpan s_failoverMargin = TimeSpan.FromSeconds(2);

    /// <summary>
    /// (2) a and b share the partitions, each with a snapshot stored; a "crashes" (its connection
    /// drops first, so nothing is released) and b takes a's partitions once their leases run out.
    /// Each is timed from the kill to b's worker start, and from the lease's own end.
    /// </summary>
    private async Task FailoverAsync(TimeSpan lease, CancellationToken cancellationToken)
    {
        var options = Options(Text.Inv($"so2l{lease.TotalSeconds:F0}")) with { PartitionLease = lease };
        _output.WriteLine();
        _output.WriteLine(Text.Inv($"(2) crash failover, lease {lease.TotalSeconds:F0} s: a and b share {options.Partitions} partitions and {StateInstances} instances (snapshot interval {options.SnapshotInterval.TotalSeconds:F0} s: the default; a drain and resume of a stored the snapshots); a crashes (connection dropped, then stopped: nothing released); b takes over"));
        await FreshAsync(options, cancellationToken);
        var phase = Text.Inv($"failover{lease.TotalSeconds:F0}");
        var a = Replica(phase, "a");
        var b = Replica(phase, "b");
        try
        {
            await using var watch = await ShareAsync(a, b, options, cancellationToken);
            await using var trickle = Trickle.Start(_js, TrickleRate, StateInstances, phase: 2, cancellationToken);
            await WaitAsync(() => trickle.Sent >= TrickleRate / 2, TimeSpan.FromSeconds(5), cancellationToken);
            await CrashAsync(a, b, lease, watch, trickle, cancellationToken);
        }
        finally
        {
            await b.StopAsync();
            await a.StopAsync();
        }
    }

    /// <summary>
    /// a takes every partition and the state, stores a snapshot of each (a drain, then a resume),
    /// and b joins and takes its share. Returns the bench's watch of the bucket, started before
    /// any of it so that every write is seen as it happens (a watch starts with the current values).
    /// </summary>
    private async Task<BucketWatch> ShareAsync(BenchReplica a, BenchReplica b, Sagas.SagaRuntimeOptions options, CancellationToken cancellationToken)
    {
        var partitions = options.Partitions;
        await StartHoldingAsync(a, options, partitions, cancellationToken);
        // On a connection of its own: the trickle's publishes must not delay what it sees.
        var watcher = await ConnectAsync(Text.Inv($"bench-scaleout-watch-{options.PartitionLease.TotalSeconds:F0}"), cancellationToken);
        var watch = await BucketWatch.StartAsync(new NATS.Client.JetStream.NatsJSContext(watcher), options.OwnershipBucket, cancellationToken);
        await LoadAsync(a, StateInstances, phase: 1, cancellationToken);
        var resumed = Stopwatch.GetTimestamp();
        await DrainAsync(a, cancellationToken);
        await a.Runtime!.ResumeAsync(cancellationToken);
        Require(await WaitAsync(() => a.Runtime.OwnedPartitions.Count == partitions && _journal.Count(a.Name, EventJournal.PartitionStarted, resumed) >= partitions,
            TimeSpan.FromSeconds(30), cancellationToken), "a to serve every partition again after its drain");
        var joined = Stopwatch.GetTimestamp();
        await b.StartAsync(_url, _manifests, options, cancellationToken);
        Require(await WaitAsync(() => Served(joined, a.Name, partitions / 2, CommitsOf(a, b)), TimeSpan.FromSeconds(30), cancellationToken), "b to serve its share");
        Require(a.Runtime.PartitionLeases.All(l => l.Record.Snapshots.Count > 0), "a snapshot of each of a's partitions");
        return watch;
    }

    private async Task CrashAsync(BenchReplica a, BenchReplica b, TimeSpan lease, BucketWatch watch, Trickle trickle, CancellationToken cancellationToken)
    {
        var commits = CommitsOf(a, b);
        var held = a.Runtime!.PartitionLeases.ToDictionary(l => l.Partition!.Value.Value, l => l.LastWritten);
        var routed = a.Runtime.RoutedStreams;
        var jit = System.Runtime.JitInfo.GetCompiledMethodCount();
        var killed = Stopwatch.GetTimestamp();
        try
        {
            await a.CrashAsync().WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        }
        catch (TimeoutException)
        {
            _output.WriteLine("  a's stop after the crash did NOT return within 30 s (b goes on regardless)");
        }
        var stopped = Stopwatch.GetTimestamp();
        List<Move> Moved() => Moves.Takeovers(_journal.Since(killed), a.Name, held.Keys, killed, commits);
        List<LogEvent> Routers() => [.. _journal.Since(killed).Where(e => e.Id == EventJournal.Acquired && e.Replica == b.Name && e.Key?.StartsWith("router.", StringComparison.Ordinal) == true)];
        var served = await WaitAsync(() => Moved().All(m => m.Started is not null), lease + TimeSpan.FromSeconds(30), cancellationToken);
        await WaitAsync(() => Moved().All(m => m.FirstCommit is not null), TimeSpan.FromSeconds(5), cancellationToken);
        await WaitAsync(() => Routers().Count >= routed.Count, lease + TimeSpan.FromSeconds(10), cancellationToken);
        var moves = Moved();

        _output.WriteLine(Text.Inv($"  a held {held.Count} partitions and {routed.Count} router(s) at the kill; its stop (connection already gone) took {Ms(killed, stopped):F0} ms; JIT compiled {System.Runtime.JitInfo.GetCompiledMethodCount() - jit} methods during the failover"));
        Moves.Print(_output, "    ", "kill", moves);
        var leaseTicks = (long)(lease.TotalSeconds * Stopwatch.Frequency);
        var afterLease = new Percentiles(moves.Where(m => m.Started is not null).Select(m => Moves.Us(m.Started!.Value - (held[m.Partition] + leaseTicks))));
        _output.WriteLine(Text.Inv($"    lease run out (a's last renewal + {lease.TotalSeconds:F0} s) → worker serving   {afterLease.Summary()}"));
        PrintLiveness(watch, moves, killed, lease);
        foreach (var stream in routed)
        {
            var router = Routers().FirstOrDefault(e => e.Key == "router." + stream);
            _output.WriteLine(Text.Inv($"    router of {stream} taken by b {(router is null ? "NOT within the wait" : Text.Inv($"{Ms(killed, router.At):F0} ms after the kill"))} (events it routes wait for it, b's partitions' too)"));
        }
        var total = Moves.Span(moves, m => m.Start, m => m.Started);
        var limit = lease + s_failoverMargin;
        _output.WriteLine(Text.Inv($"    ratio: kill → serving (max) / lease: {total.MaxMs / lease.TotalMilliseconds:F2}; trickle {trickle.Sent} events, {trickle.Errors} errors"));
        Judge(Text.Inv($"(2) crash → serving on b, lease {lease.TotalSeconds:F0} s, max"), Text.Inv($"max {total.MaxMs:F0} ms (p50 {total.Ms(50):F0}, n={total.Count}/{held.Count})"),
            Text.Inv($"≤ lease + {s_failoverMargin.TotalSeconds:F0} s = {limit.TotalMilliseconds:F0} ms"), served && total.Count == held.Count && total.MaxMs <= limit.TotalMilliseconds);
    }

    /// <summary>
    /// What b judged liveness by, as the bench's own watch of the bucket saw it: when a's heartbeat
    /// and each of its partition leases last moved, and how long after each had stood still for a
    /// lease b took the partition.
    /// </summary>
    private void PrintLiveness(BucketWatch watch, List<Move> moves, long killed, TimeSpan lease)
    {
        var taken = moves.Where(m => m.Acquired is not null).ToList();
        if (taken.Count == 0)
        {
            return;
        }
        var leaseTicks = (long)(lease.TotalSeconds * Stopwatch.Frequency);
        var heartbeat = watch.LastWrittenBy(Sagas.Ownership.OwnershipBucket.MemberKey("a"), "a");
        var leases = taken.Select(m => (Move: m, Last: watch.LastWrittenBy(Sagas.Ownership.OwnershipBucket.PartitionKey(new Core.Ids.PartitionId(m.Partition)), "a")))
            .Where(x => x.Last is not null).ToList();
        if (heartbeat is null || leases.Count == 0)
        {
            _output.WriteLine("    (the bench's watch of the bucket did not see a's last writes)");
            return;
        }
        var afterLease = new Percentiles(leases.Select(x => Moves.Us(x.Move.Acquired!.Value - (x.Last!.Value + leaseTicks))));
        var afterHeartbeat = new Percentiles(leases.Select(x => Moves.Us(x.Move.Acquired!.Value - (heartbeat.Value + leaseTicks))));
        _output.WriteLine(Text.Inv($"    the bench's watch of the bucket: a's heartbeat last moved {Ms(killed, heartbeat.Value):F0} ms from the kill, its partition leases {leases.Min(x => Ms(killed, x.Last!.Value)):F0} to {leases.Max(x => Ms(killed, x.Last!.Value)):F0} ms from it (negative: before; a write in flight may land after)"));
        _output.WriteLine(Text.Inv($"      b acquired each partition {afterLease.Ms(50):F0} ms (p50), {afterLease.MaxMs:F0} ms (max) after its lease had stood still for {lease.TotalSeconds:F0} s, and {afterHeartbeat.Ms(50):F0} / {afterHeartbeat.MaxMs:F0} ms after a's heartbeat had"));
    }
}
