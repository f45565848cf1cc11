namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    public sealed record ThroughputResult(double Rate, double PublishRate, double Seconds, int Commands, int Errors);

    public async Task<ThroughputResult> ThroughputAsync(CancellationToken cancellationToken)
    {
        var n = _options.Events;
        var track = Tracker.Begin(1, n);
        var commits0 = Store.Writer.Commits;
        var batches0 = Store.Writer.Batches;
        var relayed0 = Runtime.Relay.Published;
        var aggregate0 = await LastSeqAsync(RuntimeOptions.JetStream.Streams.AggregateEvents, cancellationToken);
        var inbox0 = await LastSeqAsync(RuntimeOptions.JetStream.Streams.Inbox, cancellationToken);
        var cpu = CpuSnapshot.Take(_natsPid);
        Logs.Commits.Start();
        using var jitLog = _options.JitLog ? new JitLog() : null;
        jitLog?.Start();

        using var monitorStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var samples = new List<Sample>();
        var monitor = MonitorAsync(samples, track, aggregate0, inbox0, relayed0, monitorStop.Token);

        var t0 = Tracker.NowUs();
        var errors = await Publisher.PipelinedAsync(PublisherJs, n, _options.Window, i =>
        {
            var now = Tracker.NowUs();
            track.Published[i] = now;
            return (Wire.Subject(_options.KeyOf(i)), Wire.Event(1, i, now));
        }, i => track.Ack(i, Tracker.NowUs()), cancellationToken);
        var published = Tracker.NowUs();

        var limit = TimeSpan.FromSeconds(Math.Max(60, n / 500));
        var complete = await WaitAsync(() => track.Commands >= n, limit, cancellationToken);
        var end = complete ? track.LastCommandUs : Tracker.NowUs();
        await monitorStop.CancelAsync();
        await monitor;
        var commits = Logs.Commits.Stop();
        var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        var jitted = jitLog?.Stop();

        var seconds = (end - t0) / 1e6;
        var rate = track.Commands / seconds;
        var publishRate = n / ((published - t0) / 1e6);
        _output.WriteLine(Text.Inv($"  publish : {n} events to {_options.Keys} keys, {_options.Window} in flight: all PubAcks after {(published - t0) / 1e6:F3} s → {publishRate:F0} events/s ({errors} errors)"));
        _output.WriteLine(Text.Inv($"  result  : {track.Commands}/{n} commands on WORKFLOW_COMMANDS after {seconds:F3} s → {rate,9:F0} events/s end to end{(complete ? string.Empty : "  (INCOMPLETE: timed out)")}"));
        if (track.DuplicateCommands > 0 || track.DuplicateCommits > 0)
        {
            _output.WriteLine(Text.Inv($"            duplicates: {track.DuplicateCommands} commands, {track.DuplicateCommits} commits (redeliveries)"));
        }
        PrintStages(samples, n, t0);
        PrintLmdb(Store.Writer.Commits - commits0, Store.Writer.Batches - batches0, commits, n);
        var lat = new Percentiles(PhaseTrack.Span(track.Published, track.Commanded));
        _output.WriteLine($"  per-event publish→command under full load: {lat.Summary()}");
        cpuDelta.Print(_output, "  ", n);
        _output.WriteLine(Text.Inv($"  Jint sandboxes created so far: {SandboxesCreated}"));
        if (jitted is not null)
        {
            _output.WriteLine(Text.Inv($"  JIT log: {jitted.Sum(m => m.Value)} method loads, {jitted.Count} distinct; top:"));
            foreach (var (flags, count) in jitted.GroupBy(m => m.Key[m.Key.LastIndexOf('[')..]).Select(g => (g.Key, g.Sum(m => m.Value))).OrderByDescending(g => g.Item2).Take(12))
            {
                _output.WriteLine(Text.Inv($"    by tier/flags {count,6} {flags}"));
            }
            foreach (var (method, count) in jitted.Take(40))
            {
                _output.WriteLine(Text.Inv($"    {count,6} {method}"));
            }
            foreach (var (ns, count) in jitted.GroupBy(m => m.Key.Split("::")[0].Split('.').Take(3).Aggregate((a, b) => a + "." + b)).Select(g => (g.Key, g.Sum(m => m.Value))).OrderByDescending(g => g.Item2).Take(15))
            {
                _output.WriteLine(Text.Inv($"    by namespace {count,6} {ns}"));
            }
        }
        await WaitForIdleAsync(cancellationToken);
        return new ThroughputResult(rate, publishRate, seconds, track.Commands, errors);
    }
}
