using System.Diagnostics;
using NATS.Client.Core;

namespace Runner.Bench.ScaleOut;

internal sealed partial class ScaleOutBench
{
    private const double TargetSnapshotCost = 0.05;
    private static readonly TimeSpan s_defaultInterval = new Sagas.SagaRuntimeOptions().SnapshotInterval;

    private static readonly (string Name, TimeSpan Interval)[] s_intervals =
    [
        ("off (24 h)", TimeSpan.FromHours(24)),
        (Text.Inv($"default ({s_defaultInterval.TotalSeconds:F0} s)"), s_defaultInterval),
        ("1 s", TimeSpan.FromSeconds(1)),
    ];

    private sealed record SnapshotRun(int Config, double Rate, double Seconds, int Snapshots, double SnapshotMs, double Records, double Bytes, double CpuUsPerEvent, bool Complete);

    /// <summary>
    /// (4) One replica, the same pipelined burst of events under each snapshot interval — off, the
    /// default, 1 s — twice, in the order off, default, 1 s, 1 s, default, off (so a drift of the
    /// machine falls on all alike). The runtime is restarted on the same store for each run.
    /// </summary>
    private async Task SnapshotCostAsync(CancellationToken cancellationToken)
    {
        var n = _options.Events;
        var options = Options("so4");
        _output.WriteLine();
        _output.WriteLine(Text.Inv($"(4) throughput with snapshots on and off: one replica, {n} events over {_options.Keys} keys per run, end to end (first publish → last command on workflow.cmd.>)"));
        await FreshAsync(options, cancellationToken);
        var a = Replica("snapshots", "a");
        var tracker = new Tracker();
        var observer = await ConnectAsync("bench-scaleout-observer", cancellationToken);
        var commands = await observer.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
        using var stopObserving = new CancellationTokenSource();
        var observing = Task.Run(async () =>
        {
            try
            {
                await foreach (var msg in commands.Msgs.ReadAllAsync(stopObserving.Token))
                {
                    if (msg.Data is { } data)
                    {
                        tracker.Observe(data, "payload", command: true);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }, CancellationToken.None);
        await observer.PingAsync(cancellationToken);
        var runs = new List<SnapshotRun>();
        var idleRound = double.NaN;
        try
        {
            await StartHoldingAsync(a, options with { SnapshotInterval = s_intervals[0].Interval }, options.Partitions, cancellationToken);
            var warm = tracker.Begin(1, Math.Max(1, n / 2));
            var warmStarted = Stopwatch.GetTimestamp();
            await Publisher.PipelinedAsync(_js, warm.Count, _options.Window, i => (Wire.Subject(i % _options.Keys), Wire.Event(1, i, tracker.NowUs())), null, cancellationToken);
            var warmed = await WaitAsync(() => warm.Commands >= warm.Count, TimeSpan.FromSeconds(120), cancellationToken);
            var settled = await RunnerBench.SettleJitAsync(cancellationToken);
            _output.WriteLine(Text.Inv($"  warm-up: {warm.Commands}/{warm.Count} events in {Stopwatch.GetElapsedTime(warmStarted).TotalSeconds:F2} s{(warmed ? string.Empty : " (INCOMPLETE)")}, then {settled:F1} s for the JIT to settle; the runs below are warm"));
            var phase = 2;
            foreach (var config in new[] { 0, 1, 2, 2, 1, 0 })
            {
                await a.StopRuntimeAsync();
                await StartHoldingAsync(a, options with { SnapshotInterval = s_intervals[config].Interval }, options.Partitions, cancellationToken);
                var run = await MeasureAsync(a, tracker, config, phase++, cancellationToken);
                runs.Add(run);
                var each = run.Snapshots == 0 ? string.Empty : Text.Inv($": {run.SnapshotMs / run.Snapshots:F0} ms, {run.Records:F0} records, {run.Bytes / 1024:F0} KiB each on average");
                _output.WriteLine(Text.Inv($"  {s_intervals[config].Name,-15} {run.Rate,8:F0} events/s  ({run.Seconds:F2} s{(run.Complete ? string.Empty : ", INCOMPLETE")}); {run.CpuUsPerEvent,4:F0} µs cpu/event in this process; {run.Snapshots,3} snapshots{each}"));
            }
            await a.StopRuntimeAsync();
            idleRound = await IdleRoundAsync(a.Store!, options, cancellationToken);
        }
        finally
        {
            await stopObserving.CancelAsync();
            await observing;
            await commands.DisposeAsync();
            await a.StopAsync();
        }
        PrintSnapshotCost(runs, idleRound);
    }

    /// <summary>
    /// One snapshot round with the machine otherwise idle (the runtime stopped): every partition
    /// captured and put to the object store, one after another, as the runtime's snapshotters do
    /// each interval. Returns the milliseconds it took.
    /// </summary>
    private async Task<double> IdleRoundAsync(Runner.Storage.LmdbStore store, Sagas.SagaRuntimeOptions options, CancellationToken cancellationToken)
    {
        var objects = await Sagas.Snapshots.SnapshotStore.OpenAsync(_js, options.SnapshotBucket, 1, cancellationToken);
        double capture = 0, put = 0;
        long records = 0, bytes = 0;
        for (var p = 0; p < options.Partitions; p++)
        {
            var partition = new Core.Ids.PartitionId(p);
            var t0 = Stopwatch.GetTimestamp();
            var image = Sagas.Snapshots.SnapshotCodec.Capture(store, partition, 1, Core.Keys.StoreKeys.Checkpoint(options.PartitionConsumer(p), partition));
            var t1 = Stopwatch.GetTimestamp();
            var name = Text.Inv($"bench-round-{p}");
            await objects.PutAsync(name, image.Bytes, DateTimeOffset.UnixEpoch, cancellationToken);
            var t2 = Stopwatch.GetTimestamp();
            await objects.DeleteAsync(name, cancellationToken);
            capture += Ms(t0, t1);
            put += Ms(t1, t2);
            records += image.Records;
            bytes += image.Bytes.Length;
        }
        _output.WriteLine(Text.Inv($"  one snapshot round with the runtime stopped: {options.Partitions} partitions, {records} records, {bytes / 1024.0 / 1024.0:F2} MiB: capture {capture:F0} ms + put {put:F0} ms = {capture + put:F0} ms"));
        return capture + put;
    }

    private async Task<SnapshotRun> MeasureAsync(BenchReplica replica, Tracker tracker, int config, int phase, CancellationToken cancellationToken)
    {
        var n = _options.Events;
        var track = tracker.Begin(phase, n);
        var mark = Stopwatch.GetTimestamp();
        var cpu = CpuSnapshot.Take(_natsPid);
        var t0 = tracker.NowUs();
        var errors = await Publisher.PipelinedAsync(_js, n, _options.Window, i => (Wire.Subject(i % _options.Keys), Wire.Event(phase, i, tracker.NowUs())), null, cancellationToken);
        var complete = await WaitAsync(() => track.Commands >= n - errors, TimeSpan.FromSeconds(Math.Max(60, n / 500)), cancellationToken) && errors == 0;
        var end = complete ? track.LastCommandUs : tracker.NowUs();
        var until = Stopwatch.GetTimestamp();
        var delta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        var seconds = (end - t0) / 1e6;
        var snapshots = _journal.Since(mark).Where(e => e.Id == EventJournal.SnapshotWritten && e.Replica == replica.Name && e.At <= until).ToList();
        await WaitAsync(() => replica.Runtime!.Relay.Depth() == 0, TimeSpan.FromSeconds(30), cancellationToken);
        return new SnapshotRun(config, track.Commands / seconds, seconds, snapshots.Count, snapshots.Sum(s => s.Ms),
            snapshots.Count == 0 ? 0 : snapshots.Average(s => s.Records), snapshots.Count == 0 ? 0 : snapshots.Average(s => s.Bytes), 1e6 * delta.Self / n, complete);
    }

    private void PrintSnapshotCost(List<SnapshotRun> runs, double idleRoundMs)
    {
        double Mean(int config, Func<SnapshotRun, double> value) => runs.Where(r => r.Config == config).Select(value).DefaultIfEmpty(double.NaN).Average();
        var off = Mean(0, r => r.Rate);
        var atDefault = Mean(1, r => r.Rate);
        var often = Mean(2, r => r.Rate);
        var offRuns = runs.Where(r => r.Config == 0).Select(r => r.Rate).ToList();
        var noise = offRuns.Count == 2 ? Math.Abs(offRuns[0] - offRuns[1]) / off : double.NaN;
        _output.WriteLine(Text.Inv($"  means of the two runs: off {off:F0}, default {atDefault:F0}, 1 s {often:F0} events/s; the two 'off' runs differ by {100 * noise:F1} % (the noise floor)"));
        _output.WriteLine(Text.Inv($"  ratios to off: default {atDefault / off:F3} ({Mean(1, r => r.Snapshots):F0} snapshots per run), 1 s {often / off:F3} ({Mean(2, r => r.Snapshots):F0} snapshots per run); cpu per event in this process: default ×{Mean(1, r => r.CpuUsPerEvent) / Mean(0, r => r.CpuUsPerEvent):F2}, 1 s ×{Mean(2, r => r.CpuUsPerEvent) / Mean(0, r => r.CpuUsPerEvent):F2} of off"));

        // A run far shorter than the default interval holds no snapshot at all (each restart starts
        // the interval again): the default's cost is projected, from the 1 s runs (wall time lost per
        // round of snapshots under load) and from one round timed alone; the larger one is judged.
        var partitions = _options.Partitions;
        var rounds = Mean(2, r => r.Snapshots) / partitions;
        var lost = Mean(2, r => r.Seconds) - Mean(0, r => r.Seconds);
        var lostPerRound = rounds > 0 ? lost / rounds : double.NaN;
        var fromRuns = Math.Max(0, lostPerRound) / s_defaultInterval.TotalSeconds;
        // The capture is CPU work: on a CPU-bound replica a round takes its time from the load, spread over the cores.
        var fromIdle = idleRoundMs / (s_defaultInterval.TotalMilliseconds * Environment.ProcessorCount);
        _output.WriteLine(Text.Inv($"  1 s runs: {rounds:F1} rounds of {partitions} snapshots per run cost {lost:F2} s of wall time → {lostPerRound * 1000:F0} ms per round at full load ({Mean(2, r => r.Records):F0} records per partition snapshot)"));
        _output.WriteLine(Text.Inv($"  projected cost at the default {s_defaultInterval.TotalSeconds:F0} s: from the 1 s runs {lostPerRound * 1000:F0} ms per round / {s_defaultInterval.TotalSeconds:F0} s = {100 * fromRuns:F2} %; from the idle round {idleRoundMs:F0} ms / ({s_defaultInterval.TotalSeconds:F0} s × {Environment.ProcessorCount} cores) = {100 * fromIdle:F2} % of the machine"));
        _output.WriteLine("    both grow with the records per partition: every snapshot copies the whole partition, dedupe markers included, whatever changed");
        var measured = 1 - (atDefault / off);
        _output.WriteLine(Text.Inv($"  measured cost at the default: {100 * measured:F1} % ({(Mean(1, r => r.Snapshots) > 0 ? "snapshots fell inside the runs" : "no snapshot fell inside the runs, so this is noise")})"));
        var projected = Math.Max(fromRuns, double.IsNaN(fromIdle) ? 0 : fromIdle);
        var complete = runs.Count > 0 && runs.All(r => r.Complete);
        Judge(Text.Inv($"(4) snapshot cost at the default {s_defaultInterval.TotalSeconds:F0} s (projected)"), Text.Inv($"{100 * projected:F2} % (1 s interval measured: {100 * (1 - (often / off)):F1} %)"),
            Text.Inv($"≤ {100 * TargetSnapshotCost:F0} %"), complete && !double.IsNaN(lostPerRound) && projected <= TargetSnapshotCost);
    }
}
