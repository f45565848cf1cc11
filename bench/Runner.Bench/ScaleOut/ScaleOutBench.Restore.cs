using System.Diagnostics;
using Runner.Core.Ids;

namespace Runner.Bench.ScaleOut;

internal sealed partial class ScaleOutBench
{
    private const double TargetRestoreSeconds = 10;

    /// <summary>
    /// (3) Partition 0 with <see cref="BenchOptions.RestoreInstances"/> instances (written straight
    /// to LMDB: the baseline), snapshotted by the product at a drain; then the codec alone (capture,
    /// put, download, restore into an empty store), twice; then a replica on an empty volume
    /// restoring it through the runtime and replaying <see cref="BenchOptions.Events"/> events that
    /// arrived after the snapshot, against the same events processed live.
    /// </summary>
    private async Task RestoreAsync(CancellationToken cancellationToken)
    {
        var options = Options("so3") with { SnapshotInterval = TimeSpan.FromHours(24) };
        var count = _options.RestoreInstances;
        var events = _options.Events;
        var p0 = new PartitionId(0);
        _output.WriteLine();
        _output.WriteLine(Text.Inv($"(3) restore onto an empty volume: partition 0 of {options.Partitions} with {count} instances (+ one dedupe marker each), then {events} events replayed after the snapshot"));
        await FreshAsync(options, cancellationToken);
        var keys = KeysOf(0, count);
        var a = Replica("restore", "a");
        var r = Replica("restore", "r");
        var b = Replica("restore", "b");
        try
        {
            var baseline = await SeedAsync(a.OpenStore(), p0, keys, cancellationToken);
            _output.WriteLine(Text.Inv($"  baseline: {2 * count} records written straight to LMDB ({(_options.Durable ? "durable" : "not durable")}, commits of 10,000) in {baseline:F2} s → {2 * count / baseline:F0} records/s"));

            // The product takes the snapshot: a keeps its store (at or past the newest snapshot: none), runs a few events, drains.
            await StartHoldingAsync(a, options, options.Partitions, cancellationToken);
            await PublishToAsync(keys, 200, phase: 31, cancellationToken);
            Require(await WaitAsync(() => a.Commits.Total >= 200, TimeSpan.FromSeconds(30), cancellationToken), "200 events on partition 0");
            var drained = Stopwatch.GetTimestamp();
            await DrainAsync(a, cancellationToken);
            var drainEvents = _journal.Since(drained);
            var handOver = drainEvents.FirstOrDefault(e => e.Id == EventJournal.Released && e.Partition == 0);
            var written = drainEvents.FirstOrDefault(e => e.Id == EventJournal.SnapshotWritten && e.Partition == 0);
            _output.WriteLine(Text.Inv($"  hand-over of this partition at the drain (a's part: stop, flush, snapshot, release): {handOver?.Ms ?? double.NaN:F0} ms (cf. the {TargetHandOverP99Ms / 1000:F0} s hand-over target of (1)); its snapshot: {written?.Records ?? 0} records, {written?.Bytes / 1024.0 / 1024.0 ?? double.NaN:F2} MiB, captured and stored in {written?.Ms ?? double.NaN:F0} ms"));
            await a.StopRuntimeAsync();

            PrintCompression(a.Store!, p0, written?.Bytes ?? 0);
            var codec = new List<double>();
            for (var run = 1; run <= 2; run++)
            {
                codec.Add(await CodecAsync(a.Store!, p0, options, run, count, baseline, cancellationToken));
            }
            await a.StopAsync();
            Judge(Text.Inv($"(3) restore of {count} instances (download + restore)"), Text.Inv($"{codec[0]:F2} s cold, {codec[1]:F2} s warm"), Text.Inv($"≤ {TargetRestoreSeconds:F0} s"), codec.Max() <= TargetRestoreSeconds);

            await ReplayAsync(options, keys, r, b, cancellationToken);
        }
        finally
        {
            await b.StopAsync();
            await r.StopAsync();
            await a.StopAsync();
        }
    }

    /// <summary>Publishes <paramref name="count"/> events, one per key in turn, pipelined; returns the publish errors.</summary>
    private Task<int> PublishToAsync(List<int> keys, int count, int phase, CancellationToken cancellationToken) =>
        Publisher.PipelinedAsync(_js, count, _options.Window, i => (Wire.Subject(keys[i % keys.Count]), Wire.Event(phase, i, 0)), null, cancellationToken);

    /// <summary>
    /// Events arrive while no replica owns partition 0 (a router-only replica routes them, then
    /// stops); b starts on an empty volume, restores the snapshot a's drain stored, and replays them.
    /// The same number of events then goes through b live, as the baseline.
    /// </summary>
    private async Task ReplayAsync(Sagas.SagaRuntimeOptions options, List<int> keys, BenchReplica router, BenchReplica b, CancellationToken cancellationToken)
    {
        var events = _options.Events;
        var inbox = options.JetStream.Streams.Inbox;
        var inbox0 = (await _js.GetStreamAsync(inbox, cancellationToken: cancellationToken)).Info.State.LastSeq;
        await router.StartAsync(_url, _manifests, options with { TakePartitions = false }, cancellationToken);
        var errors = await PublishToAsync(keys, events, phase: 32, cancellationToken);
        var routed = await WaitAsync(async () => (await _js.GetStreamAsync(inbox, cancellationToken: cancellationToken)).Info.State.LastSeq - inbox0 >= (ulong)(events - errors),
            TimeSpan.FromSeconds(120), cancellationToken);
        Require(routed, $"{events} events routed into the inbox");
        await router.StopAsync();

        var jit = System.Runtime.JitInfo.GetCompiledMethodCount();
        var started = Stopwatch.GetTimestamp();
        await b.StartAsync(_url, _manifests, options, cancellationToken);
        var replayed = await WaitAsync(() => b.Commits.Total >= events - errors, TimeSpan.FromSeconds(180), cancellationToken);
        var done = b.Commits.Last;
        var flushed = await WaitAsync(() => b.Runtime!.Relay.Depth() == 0, TimeSpan.FromSeconds(60), cancellationToken);
        var commandsOut = Stopwatch.GetTimestamp();
        var log = _journal.Since(started).Where(e => e.Replica == b.Name && e.Partition == 0).ToList();
        var acquired = log.FirstOrDefault(e => e.Id == EventJournal.Acquired);
        var restored = log.FirstOrDefault(e => e.Id == EventJournal.Restored);
        var workerStarted = log.FirstOrDefault(e => e.Id == EventJournal.PartitionStarted);
        _output.WriteLine(Text.Inv($"  through the runtime: b starts on an empty volume with {events} events ({errors} publish errors) in partition 0's inbox after the snapshot (routed while nobody owned it)"));
        if (acquired is null || restored is null || workerStarted is null)
        {
            _output.WriteLine("    b did NOT acquire, restore and start partition 0 in time");
            Judge("(3) replay after restore", "incomplete", "all events replayed", false);
            return;
        }
        var replaySeconds = Stopwatch.GetElapsedTime(workerStarted.At, done).TotalSeconds;
        var replayRate = b.Commits.Total / replaySeconds;
        _output.WriteLine(Text.Inv($"    b started → acquired {Ms(started, acquired.At),6:F0} ms → restored {Ms(acquired.At, restored.At),6:F0} ms ({restored.Records} records, {restored.Instances} instances; the restore itself {restored.Ms:F0} ms as logged) → worker started {Ms(restored.At, workerStarted.At),5:F0} ms"));
        _output.WriteLine(Text.Inv($"    replay: {b.Commits.Total} events committed {replaySeconds:F2} s after the worker started → {replayRate:F0} events/s{(replayed ? string.Empty : "  (INCOMPLETE)")}; all their commands published {Ms(workerStarted.At, commandsOut) / 1000:F2} s after it{(flushed ? string.Empty : " (NOT flushed)")}; JIT compiled {System.Runtime.JitInfo.GetCompiledMethodCount() - jit} methods"));
        _output.WriteLine(Text.Inv($"    b started → partition 0 caught up: {Ms(started, done) / 1000:F2} s"));
        Judge(Text.Inv($"(3) restore through the runtime (acquired → restored)"), Text.Inv($"{Ms(acquired.At, restored.At) / 1000:F2} s ({restored.Instances} instances)"), Text.Inv($"≤ {TargetRestoreSeconds:F0} s"),
            Ms(acquired.At, restored.At) <= TargetRestoreSeconds * 1000);

        // Baseline: the same number of events on the same partition, live (routed and applied as they come).
        var before = b.Commits.Total;
        var t0 = Stopwatch.GetTimestamp();
        var liveErrors = await PublishToAsync(keys, events, phase: 33, cancellationToken);
        var live = await WaitAsync(() => b.Commits.Total - before >= events - liveErrors, TimeSpan.FromSeconds(180), cancellationToken);
        var liveSeconds = Stopwatch.GetElapsedTime(t0, b.Commits.Last).TotalSeconds;
        var liveRate = (b.Commits.Total - before) / liveSeconds;
        _output.WriteLine(Text.Inv($"  baseline: the same {events} events published to partition 0 with b serving it → {liveRate:F0} events/s live (first publish → last commit){(live ? string.Empty : "  (INCOMPLETE)")}"));
        _output.WriteLine(Text.Inv($"    ratio replay / live: {replayRate / liveRate:F2}"));
        Judge("(3) replay after restore (one partition)", Text.Inv($"{replayRate:F0} events/s, ×{replayRate / liveRate:F2} of live"), "all replayed (no target given)", replayed);
    }
}
