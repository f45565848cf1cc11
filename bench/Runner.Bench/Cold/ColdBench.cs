using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Messaging;
using Runner.Testing;

namespace Runner.Bench.Cold;

/// <summary>
/// <c>--cold</c>: what a user meets after every deploy and failover. Each run starts a new nats-server and a fresh
/// <c>runner serve</c> process (saga mode, defaults, durable LMDB, an empty data directory) and times the tally saga's
/// commands as they come out: the first 20,000 events against the same process's steady state, on a backlog (published
/// before the process starts) and pipelined (published while it runs). Nothing is warmed up.
/// </summary>
internal static class ColdBench
{
    public const int FirstEvents = 20_000;

    /// <summary>The steady state is the rate over this last share of the events.</summary>
    private const double SteadyShare = 0.4;

    public static async Task<int> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var events = options.ColdEvents / ColdWorkload.GroupEvents * ColdWorkload.GroupEvents;
        var root = Path.Combine(Path.GetTempPath(), "runner-cold-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            var runners = new Dictionary<string, string>(StringComparer.Ordinal);
            async Task<string> RunnerFor(ColdVariant variant)
            {
                if (variant.RunnerDir is { } published)
                {
                    return published;
                }
                var key = string.Join(" ", variant.PublishArgs);
                if (ReferenceEquals(variant.PublishArgs, ColdVariant.ImagePublish) && options.RunnerDir is { } given)
                {
                    return given;
                }
                if (!runners.TryGetValue(key, out var dir))
                {
                    dir = await PublishAsync(Path.Combine(root, "runner-" + runners.Count), variant.PublishArgs, output, cancellationToken);
                    runners[key] = dir;
                }
                return dir;
            }
            var manifests = Path.Combine(root, "manifests");
            ColdWorkload.Write(manifests);
            output.WriteLine(Text.Inv($"Runner.Bench --cold  events={events} (accounts of {ColdWorkload.DepositsPerAccount} deposits, groups of {ColdWorkload.GroupKeys}), {Environment.ProcessorCount} cores, runner from {(options.RunnerDir is null ? "a fresh publish of src/Runner.Host (-c Release, as the image: NativeAOT)" : options.RunnerDir)}, .NET {Environment.Version}"));
            output.WriteLine(Text.Inv($"  machine load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on this machine skews every figure)"));
            output.WriteLine(MachineSpeed.Line("at start"));
            output.WriteLine(Text.Inv($"  each run: a new nats-server, a fresh `runner serve` (RUNNER_MODE=saga, defaults, durable LMDB, empty data directory); first = events {ColdWorkload.GroupEvents:N0}–{ColdWorkload.GroupEvents + FirstEvents:N0}, steady = the last {SteadyShare:P0}"));
            var results = new List<ColdResult>();
            var paced = new List<PacedResult>();
            var roundTrips = new List<RoundTripColdResult>();
            var failed = false;
            // Variants take turns round by round, so that a machine getting busier or quieter skews them alike.
            for (var round = 1; round <= options.ColdRounds; round++)
            {
                foreach (var variant in options.ColdVariants)
                {
                    var runner = await RunnerFor(variant);
                    foreach (var mode in options.ColdModes)
                    {
                        // The traffic alone runs no runner: once a round, whatever the variants.
                        if (mode == "floor" && !ReferenceEquals(variant, options.ColdVariants[0]))
                        {
                            continue;
                        }
                        output.WriteLine();
                        var of = options.ColdRounds > 1 ? Text.Inv($", round {round} of {options.ColdRounds}") : "";
                        output.WriteLine(mode == "floor"
                            ? Text.Inv($"(floor{of}) the tally saga's traffic alone, through Runner's transport in this process: no runner")
                            : Text.Inv($"({variant.Name}, {mode}{of}) {variant.Describe()}"));
                        if (mode == "floor")
                        {
                            if (await ColdFloor.MeasureAsync(root, events, options.Window, output, cancellationToken) is not { } floor)
                            {
                                failed = true;
                                continue;
                            }
                            output.WriteLine(Text.Inv($"  the traffic alone: first 20,000 events {floor.FirstRate:N0} events/s, steady {floor.SteadyRate:N0} events/s; steady cpu/event in this process {floor.SteadyRunnerUs:F0} µs, nats-server {floor.SteadyNatsUs:F0} µs ({floor.SteadyRunnerUs / floor.SteadyNatsUs:F2}×)"));
                            results.Add(floor);
                            continue;
                        }
                        if (mode == "roundtrip")
                        {
                            if (await ColdRoundTrip.MeasureAsync(runner, root, variant, options, output, cancellationToken) is not { } trips)
                            {
                                failed = true;
                                continue;
                            }
                            trips.Print(output);
                            roundTrips.Add(trips);
                            continue;
                        }
                        if (mode == "paced")
                        {
                            var latency = await MeasurePacedAsync(runner, manifests, root, variant, options, events, output, cancellationToken);
                            if (latency is null)
                            {
                                failed = true;
                                continue;
                            }
                            latency.Print(output);
                            paced.Add(latency);
                            continue;
                        }
                        var pipelined = mode == "pipelined";
                        var result = await MeasureAsync(runner, manifests, root, variant, pipelined, events, options.Window, output, cancellationToken);
                        if (result is null)
                        {
                            failed = true;
                            continue;
                        }
                        result.Print(output);
                        results.Add(result);
                    }
                }
            }
            output.WriteLine();
            output.WriteLine("summary (cold/warm = first 20,000 events / the same process warm: its steady state on a backlog, its warm pass pipelined; target ≥ 0.8)");
            output.WriteLine(MachineSpeed.Line("at the end"));
            foreach (var r in results)
            {
                output.WriteLine(Text.Inv($"  {r.Variant,-12} {(r.Pipelined ? "pipelined" : "backlog"),-9}  first {r.FirstRate,8:N0} ev/s  warm {r.WarmRate,8:N0} ev/s  cold/warm {r.ColdWarm:F2}  start→first command {r.StartMs,6:N0} ms  start→21,000 {r.FirstDoneMs,6:N0} ms  steady cpu/event runner {r.SteadyRunnerUs,5:F0} µs, nats-server {r.SteadyNatsUs,5:F0} µs ({r.SteadyRunnerUs / r.SteadyNatsUs:F2}×), GC paused {(r.SteadyGc is { } gc ? gc.PauseShare.ToString("P1", CultureInfo.InvariantCulture) : "?")} of wall, allocated {(r.SteadyGc?.AllocatedKiBPerEvent is { } kib ? kib.ToString("F1", CultureInfo.InvariantCulture) : "?")} KiB/event, peak RSS {r.PeakRssMiB?.ToString("N0", CultureInfo.InvariantCulture) ?? "?"} MiB"));
            }
            foreach (var r in paced)
            {
                output.WriteLine(Text.Inv($"  {r.Variant,-12} paced {r.Rate}/s  publish→command p50 / p99: first {r.Seconds} s {r.Cold.Ms(50):F2} / {r.Cold.Ms(99):F2} ms, warm {r.Warm.Ms(50):F2} / {r.Warm.Ms(99):F2} ms (target p99 ≤ 20)  cpu/event runner {r.ColdRunnerUs:F0} / {r.WarmRunnerUs:F0} µs, nats-server {r.ColdNatsUs:F0} / {r.WarmNatsUs:F0} µs"));
            }
            foreach (var r in roundTrips)
            {
                output.WriteLine(Text.Inv($"  {r.Variant,-12} roundtrip {r.Instances:N0} instances  first burst {r.Cold.Rate,7:N0}/s  warm {r.Warm.Rate,7:N0}/s (target ≥ 5,000)  cpu per round trip runner {r.Cold.RunnerUs:F0} / {r.Warm.RunnerUs:F0} µs, nats-server {r.Cold.NatsUs:F0} / {r.Warm.NatsUs:F0} µs (first / warm)"));
            }
            if (options.ColdRounds > 1)
            {
                foreach (var group in roundTrips.GroupBy(r => r.Variant))
                {
                    var runs = group.ToList();
                    string R(Func<RoundTripColdResult, double> figure, string format) => Spread(runs.Select(figure).ToList(), format);
                    output.WriteLine(Text.Inv($"  {group.Key,-12} roundtrip  n={runs.Count}  first burst {R(r => r.Cold.Rate, "N0")}/s  warm {R(r => r.Warm.Rate, "N0")}/s  cpu per round trip runner first {R(r => r.Cold.RunnerUs, "F0")} µs, warm {R(r => r.Warm.RunnerUs, "F0")} µs, nats-server warm {R(r => r.Warm.NatsUs, "F0")} µs"));
                }
                output.WriteLine();
                output.WriteLine(Text.Inv($"median [lowest–highest] over the rounds (n = runs that finished)"));
                foreach (var group in paced.GroupBy(r => r.Variant))
                {
                    var runs = group.ToList();
                    string P(Func<PacedResult, double> figure, string format) => Spread(runs.Select(figure).ToList(), format);
                    output.WriteLine(Text.Inv($"  {group.Key,-12} paced      n={runs.Count}  p99 first {P(r => r.Cold.Ms(99), "F1")} ms  p99 warm {P(r => r.Warm.Ms(99), "F1")} ms  p50 first {P(r => r.Cold.Ms(50), "F2")} ms  p50 warm {P(r => r.Warm.Ms(50), "F2")} ms  cpu/event runner first {P(r => r.ColdRunnerUs, "F0")} µs, warm {P(r => r.WarmRunnerUs, "F0")} µs"));
                }
                foreach (var group in results.GroupBy(r => (r.Variant, r.Pipelined)))
                {
                    var runs = group.ToList();
                    output.WriteLine(Text.Inv($"  {group.Key.Variant,-12} {(group.Key.Pipelined ? "pipelined" : "backlog"),-9}  n={runs.Count}  first {Spread(runs, r => r.FirstRate, "N0")} ev/s  warm {Spread(runs, r => r.WarmRate, "N0")} ev/s  cold/warm {Spread(runs, r => r.ColdWarm, "F2")}  start→first command {Spread(runs, r => r.StartMs, "N0")} ms  start→21,000 {Spread(runs, r => r.FirstDoneMs, "N0")} ms  steady cpu/event runner ÷ nats-server {Spread(runs, r => r.SteadyRunnerUs / r.SteadyNatsUs, "F2")}  steady GC pause {Spread(runs, r => 100 * (r.SteadyGc?.PauseShare ?? double.NaN), "F1")} % of wall  steady allocated {Spread(runs, r => r.SteadyGc?.AllocatedKiBPerEvent ?? double.NaN, "F1")} KiB/event  peak RSS {Spread(runs, r => r.PeakRssMiB ?? double.NaN, "N0")} MiB"));
                }
            }
            return failed ? 1 : 0;
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // a file still held by a process that is going away
            }
        }
    }

    /// <summary><c>median [lowest–highest]</c> of a figure over several runs.</summary>
    private static string Spread(List<ColdResult> runs, Func<ColdResult, double> figure, string format) =>
        Spread(runs.Select(figure).ToList(), format);

    /// <summary>Runs without a reading of the figure (NaN: a floor run has no <c>/metrics</c>) are left out; none at all reads "no reading".</summary>
    private static string Spread(List<double> figures, string format)
    {
        var values = figures.Where(v => !double.IsNaN(v)).Order().ToList();
        if (values.Count == 0)
        {
            return "no reading";
        }
        var median = values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2;
        string F(double v) => v.ToString(format, CultureInfo.InvariantCulture);
        return $"{F(median)} [{F(values[0])}–{F(values[^1])}]";
    }

    private static async Task<ColdResult?> MeasureAsync(string runner, string manifests, string root, ColdVariant variant, bool pipelined, int events, int window, TextWriter output, CancellationToken cancellationToken)
    {
        await using var run = await ColdRun.StartAsync(root, cancellationToken);
        var (connection, js, natsPid) = (run.Connection, run.Js, run.NatsPid);
        var observer = new CommandObserver(events / ColdWorkload.DepositsPerAccount, natsPid);
        await using var subscription = await connection.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
        var observing = observer.RunAsync(subscription, cancellationToken);

        if (!pipelined)
        {
            var clock = Stopwatch.StartNew();
            var errors = await Publisher.PipelinedAsync(js, events, window, ColdWorkload.Event, null, cancellationToken);
            output.WriteLine(Text.Inv($"  backlog of {events:N0} events published in {clock.Elapsed.TotalSeconds:F1} s ({errors} errors) before the runner starts"));
        }

        using var process = run.StartRunner(runner, manifests, variant, pipelined ? "p" : "b");
        observer.Watch(process.Pid, process.Started, process.MetricsAsync);
        if (pipelined)
        {
            // A runner that exits or never answers fails its run, as on a backlog.
            if (await process.ReadyOrFailedAsync(output, cancellationToken) is not { } ready)
            {
                return null;
            }
            output.WriteLine(Text.Inv($"  ready {ready.TotalMilliseconds:N0} ms after start; publishing {events:N0} events while it runs"));
            var clock = Stopwatch.StartNew();
            var errors = await Publisher.PipelinedAsync(js, events, window, ColdWorkload.Event, null, cancellationToken);
            output.WriteLine(Text.Inv($"  all {events:N0} published {clock.Elapsed.TotalSeconds:F1} s later{(errors > 0 ? $", {errors} publishes failed" : string.Empty)}"));
        }
        var limit = TimeSpan.FromSeconds(60 + (events / 2_000));
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(limit);
        var outcome = await Task.WhenAny(observer.Done, process.ExitedTask, Task.Delay(Timeout.Infinite, bounded.Token).ContinueWith(_ => { }, TaskScheduler.Default));
        if (outcome != observer.Done)
        {
            output.WriteLine(Text.Inv($"  FAILED: {observer.Arrived:N0} of {events / ColdWorkload.DepositsPerAccount:N0} commands after {process.Elapsed.TotalSeconds:F0} s{(process.HasExited ? $"; the runner exited with {process.ExitCode}" : string.Empty)}"));
            output.WriteLine(process.Tail());
            return null;
        }
        var (firstGc, steadyGc) = await observer.WindowsAsync();
        var result = observer.Result(variant.Name, pipelined, events) with { FirstGc = firstGc, SteadyGc = steadyGc };
        await subscription.UnsubscribeAsync();
        await observing;
        if (pipelined)
        {
            // The same publishing again, now into the warm process (new accounts): what its first 20,000
            // events do once nothing is cold. The publisher competes for the same cores in both passes, for
            // as long (the same number of events), so the ratio of the two is what a start costs, not what
            // publishing does. (A shorter warm pass would be over, publisher and all, while the cold pass's
            // publisher still ran: most of its window without the competition the cold window had.)
            var warmEvents = events;
            var warm = new CommandObserver(warmEvents / ColdWorkload.DepositsPerAccount, natsPid);
            await using var warmSubscription = await connection.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
            var warmObserving = warm.RunAsync(warmSubscription, cancellationToken);
            warm.Watch(process.Pid, Stopwatch.GetTimestamp());
            var warmClock = Stopwatch.StartNew();
            await Publisher.PipelinedAsync(js, warmEvents, window, n => ColdWorkload.Event(events + n), null, cancellationToken);
            output.WriteLine(Text.Inv($"  warm pass: {warmEvents:N0} events (new accounts) published the same way, all {warmClock.Elapsed.TotalSeconds:F1} s after the first"));
            if (await Task.WhenAny(warm.Done, Task.Delay(limit, cancellationToken)) != warm.Done)
            {
                output.WriteLine(Text.Inv($"  FAILED: the warm pass got {warm.Arrived:N0} of {warmEvents / ColdWorkload.DepositsPerAccount:N0} commands"));
                return null;
            }
            result = result with { WarmFirstRate = warm.Result(variant.Name, pipelined, warmEvents).FirstRate };
            await warmSubscription.UnsubscribeAsync();
            await warmObserving;
        }
        result = result with { PeakRssMiB = PeakRssMiB(process.Pid) };
        await process.StopAsync(TimeSpan.FromSeconds(20));
        return result;
    }

    /// <summary>
    /// The paced mode: a fresh runner, ready; <see cref="BenchOptions.Rate"/> events/s for <see cref="BenchOptions.Seconds"/>
    /// from its first event (what it does just after a deploy); then <paramref name="events"/> at full speed (it warms up);
    /// then the same rate for as long again. Publish → command of each window, and CPU per event of the runner and of
    /// nats-server over each (from the window's first publish to its last command).
    /// </summary>
    private static async Task<PacedResult?> MeasurePacedAsync(string runner, string manifests, string root, ColdVariant variant, BenchOptions options, int events, TextWriter output, CancellationToken cancellationToken)
    {
        var window = Math.Max(1, options.Rate * options.Seconds / ColdWorkload.GroupEvents) * ColdWorkload.GroupEvents;
        await using var run = await ColdRun.StartAsync(root, cancellationToken);
        var (connection, js, natsPid) = (run.Connection, run.Js, run.NatsPid);
        var latency = new PacedLatency(window + events + window);
        await using var subscription = await connection.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
        var observing = latency.RunAsync(subscription, cancellationToken);
        await using var inbox = options.PacedHops ? await connection.SubscribeCoreAsync<byte[]>(Runner.Core.Subjects.Subjects.InboxPrefix + ".>", cancellationToken: cancellationToken) : null;
        var watchingInbox = inbox is null ? Task.CompletedTask : latency.RunInboxAsync(inbox, cancellationToken);

        using var process = run.StartRunner(runner, manifests, variant, "paced");
        if (await process.ReadyOrFailedAsync(output, cancellationToken) is not { } ready)
        {
            return null;
        }
        output.WriteLine(Text.Inv($"  ready {ready.TotalMilliseconds:N0} ms after start; {window:N0} events at {options.Rate}/s, then {events:N0} at full speed, then {window:N0} at {options.Rate}/s"));
        var limit = TimeSpan.FromSeconds(60 + (events / 2_000));
        (double Runner, double Nats) Cpu() =>
            (CpuSnapshot.ProcessSeconds($"/proc/{process.Pid}/stat"), natsPid is { } pid ? CpuSnapshot.ProcessSeconds($"/proc/{pid}/stat") : double.NaN);
        async Task<(double Runner, double Nats)?> WindowAsync(int first, int count, string what)
        {
            var gcBefore = await process.MetricsAsync(cancellationToken);
            var before = Cpu();
            var errors = await latency.PublishPacedAsync(js, first, count, options.Rate, cancellationToken);
            await Task.WhenAny(latency.UntilAsync((first + count) / ColdWorkload.DepositsPerAccount), Task.Delay(limit, cancellationToken));
            if (latency.Commands < (first + count) / ColdWorkload.DepositsPerAccount)
            {
                output.WriteLine(Text.Inv($"  FAILED: {what}: {latency.Commands:N0} of {(first + count) / ColdWorkload.DepositsPerAccount:N0} commands{(process.HasExited ? $"; the runner exited with {process.ExitCode}" : string.Empty)}"));
                output.WriteLine(process.Tail());
                return null;
            }
            var after = Cpu();
            var gcAfter = await process.MetricsAsync(cancellationToken);
            var gc = gcBefore is { } g0 && gcAfter is { } g1
                ? Text.Inv($"runner GC paused {(g1.PauseSeconds - g0.PauseSeconds) * 1000:F0} ms in all (collections gen0/1/2 {g1.Gen0 - g0.Gen0}/{g1.Gen1 - g0.Gen1}/{g1.Gen2 - g0.Gen2}){g1.SlowSince(g0)}")
                : "no GC reading";
            output.WriteLine(Text.Inv($"  {what}: {count:N0} events at {options.Rate}/s{(errors > 0 ? $", {errors} publishes failed" : string.Empty)}; publish → command {latency.Latencies(first, count).Summary()}; {gc}"));
            if (inbox is not null)
            {
                var (toInbox, fromInbox) = latency.Hops(first, count);
                output.WriteLine(Text.Inv($"    publish → inbox p50 {toInbox.Ms(50):F2} p99 {toInbox.Ms(99):F2} max {toInbox.MaxMs:F2} ms; inbox → command p50 {fromInbox.Ms(50):F2} p99 {fromInbox.Ms(99):F2} max {fromInbox.MaxMs:F2} ms (n={toInbox.Count})"));
            }
            output.WriteLine(Text.Inv($"    slowest (published at, latency): {latency.Slowest(first, count, 12)}"));
            return ((after.Runner - before.Runner) * 1e6 / count, (after.Nats - before.Nats) * 1e6 / count);
        }
        if (await WindowAsync(0, window, "first window") is not { } cold)
        {
            return null;
        }
        var warmUp = Stopwatch.StartNew();
        var warmErrors = await Publisher.PipelinedAsync(js, events, options.Window, n => ColdWorkload.Event(window + n), null, cancellationToken);
        await Task.WhenAny(latency.UntilAsync((window + events) / ColdWorkload.DepositsPerAccount), Task.Delay(limit, cancellationToken));
        if (latency.Commands < (window + events) / ColdWorkload.DepositsPerAccount)
        {
            output.WriteLine(Text.Inv($"  FAILED: warm-up: {latency.Commands:N0} commands{(process.HasExited ? $"; the runner exited with {process.ExitCode}" : string.Empty)}"));
            output.WriteLine(process.Tail());
            return null;
        }
        output.WriteLine(Text.Inv($"  warm-up: {events:N0} events at full speed in {warmUp.Elapsed.TotalSeconds:F1} s ({warmErrors} publishes failed)"));
        if (await WindowAsync(window + events, window, "warm window") is not { } warm)
        {
            return null;
        }
        var result = new PacedResult(variant.Name, options.Rate, options.Seconds, latency.Latencies(0, window), latency.Latencies(window + events, window),
            cold.Runner, cold.Nats, warm.Runner, warm.Nats);
        await subscription.UnsubscribeAsync();
        await observing;
        if (inbox is not null)
        {
            await inbox.UnsubscribeAsync();
        }
        await watchingInbox;
        await process.StopAsync(TimeSpan.FromSeconds(20));
        return result;
    }

    /// <summary>The process's peak resident memory (<c>VmHWM</c>), in MiB; null when it cannot be read.</summary>
    private static double? PeakRssMiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kib = line["VmHWM:".Length..].Trim().Split(' ')[0];
                    return double.Parse(kib, CultureInfo.InvariantCulture) / 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    /// <summary><c>dotnet publish src/Runner.Host -c Release</c> with <paramref name="properties"/> into <paramref name="target"/>.</summary>
    private static async Task<string> PublishAsync(string target, IReadOnlyList<string> properties, TextWriter output, CancellationToken cancellationToken)
    {
        var repository = RepositoryRoot() ?? throw new InvalidOperationException("run from the repository (Runner.slnx not found above the working directory), or pass --runner DIR");
        var clock = Stopwatch.StartNew();
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = repository, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "publish", "src/Runner.Host/Runner.Host.csproj", "-c", "Release", "-o", target, "-nologo", "-v", "quiet" }.Concat(properties))
        {
            start.ArgumentList.Add(arg);
        }
        using var publish = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet publish");
        var stdout = publish.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = publish.StandardError.ReadToEndAsync(cancellationToken);
        await publish.WaitForExitAsync(cancellationToken);
        if (publish.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish failed ({publish.ExitCode}):\n{await stdout}{await stderr}");
        }
        output.WriteLine(Text.Inv($"published src/Runner.Host {string.Join(" ", properties)} in {clock.Elapsed.TotalSeconds:F0} s"));
        return target;
    }

    private static string? RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Runner.slnx")))
                {
                    return dir.FullName;
                }
            }
        }
        return null;
    }
}

/// <summary>What one fresh process did: rates and CPU per event over the first window and the steady state.</summary>
internal sealed record ColdResult(
    string Variant, bool Pipelined, double StartMs, double FirstDoneMs, double FirstRate, double SteadyRate,
    double FirstRunnerUs, double FirstNatsUs, double SteadyRunnerUs, double SteadyNatsUs, double OtherCpuShare,
    IReadOnlyList<double> RatePer20k)
{
    /// <summary>Pipelined: the first 20,000 events of a second pass published the same way into the same, now warm, process.</summary>
    public double? WarmFirstRate { get; init; }

    /// <summary>The runner's GC pauses over the first 20,000 events and the steady state, from its <c>/metrics</c>.</summary>
    public MetricsWindow? FirstGc { get; init; }

    public MetricsWindow? SteadyGc { get; init; }

    /// <summary>The runner's peak resident memory over the whole run (both passes when pipelined).</summary>
    public double? PeakRssMiB { get; init; }

    /// <summary>What the first 20,000 events are compared with: the warm pass (pipelined), or the steady state (backlog).</summary>
    public double WarmRate => WarmFirstRate ?? SteadyRate;

    public double ColdWarm => FirstRate / WarmRate;

    public void Print(TextWriter output)
    {
        output.WriteLine(Text.Inv($"  start → first command {StartMs:N0} ms (process start, connect, streams, leases, first script compile, first {ColdWorkload.GroupEvents:N0} events)"));
        output.WriteLine(Text.Inv($"  first 20,000 events: {FirstRate:N0} events/s; cpu/event runner {FirstRunnerUs:F0} µs, nats-server {FirstNatsUs:F0} µs; start → event {ColdBench.FirstEvents + ColdWorkload.GroupEvents:N0} applied {FirstDoneMs:N0} ms"));
        output.WriteLine(Text.Inv($"  steady state:        {SteadyRate:N0} events/s; cpu/event runner {SteadyRunnerUs:F0} µs, nats-server {SteadyNatsUs:F0} µs"));
        output.WriteLine(Text.Inv($"  runner GC, first 20,000: {FirstGc?.ToString() ?? "no reading"}; steady state: {SteadyGc?.ToString() ?? "no reading"}; peak resident memory {PeakRssMiB?.ToString("N0", CultureInfo.InvariantCulture) ?? "?"} MiB"));
        if (WarmFirstRate is { } warm)
        {
            output.WriteLine(Text.Inv($"  warm pass, first 20,000 events (as many published the same way into this process): {warm:N0} events/s"));
        }
        output.WriteLine(Text.Inv($"  cold/warm {ColdWarm:F2} (first 20,000 / {(WarmFirstRate is null ? "steady state" : "warm pass")}); other processes used {OtherCpuShare:P0} of the machine over the run"));
        output.WriteLine("  events/s per 20,000 events: " + string.Join(" ", RatePer20k.Select(r => r.ToString("N0", CultureInfo.InvariantCulture))));
    }
}

/// <summary>What one fresh process did at a paced rate: publish → command just after it started and once warm.</summary>
internal sealed record PacedResult(
    string Variant, int Rate, int Seconds, Percentiles Cold, Percentiles Warm,
    double ColdRunnerUs, double ColdNatsUs, double WarmRunnerUs, double WarmNatsUs)
{
    public void Print(TextWriter output) =>
        output.WriteLine(Text.Inv($"  p99 first window {Cold.Ms(99):F1} ms, warm {Warm.Ms(99):F1} ms (target ≤ 20); cpu/event runner {ColdRunnerUs:F0} / {WarmRunnerUs:F0} µs, nats-server {ColdNatsUs:F0} / {WarmNatsUs:F0} µs (first / warm)"));
}

/// <summary>
/// One measured run's surroundings: a nats-server of its own with Runner's streams, the bench's connection to it, and
/// the fresh runner processes started against it, each with a new data directory that goes with the run.
/// </summary>
internal sealed class ColdRun : IAsyncDisposable
{
    private readonly NatsServerFixture _nats;
    private readonly string _root;
    private readonly List<string> _data = [];

    private ColdRun(NatsServerFixture nats, string root, NatsConnection connection, int? natsPid)
    {
        _nats = nats;
        _root = root;
        Connection = connection;
        Js = new NatsJSContext(connection);
        NatsPid = natsPid;
    }

    public NatsConnection Connection { get; }

    public NatsJSContext Js { get; }

    public int? NatsPid { get; }

    public static async Task<ColdRun> StartAsync(string root, CancellationToken cancellationToken)
    {
        var nats = new NatsServerFixture();
        await nats.InitializeAsync().WaitAsync(cancellationToken);
        NatsConnection? connection = null;
        try
        {
            if (!nats.CanRestart)
            {
                throw new InvalidOperationException("--cold starts a nats-server of its own for every run: unset RUNNER_TEST_NATS_URL");
            }
            connection = new NatsConnection(new NatsOpts { Url = nats.Url, Name = "bench-cold" });
            await connection.ConnectAsync();
            var run = new ColdRun(nats, root, connection, CpuSnapshot.FindNatsServer(new Uri(nats.Url).Port));
            await StreamTopology.EnsureAsync(run.Js, new JetStreamSettings(), NullLogger.Instance, cancellationToken);
            return run;
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
            await nats.DisposeAsync();
            throw;
        }
    }

    /// <summary>A fresh <c>runner serve</c> (saga mode unless <paramref name="mode"/> says otherwise, defaults otherwise) with an empty data directory of its own.</summary>
    public RunnerChild StartRunner(string runner, string manifests, ColdVariant variant, string label, string mode = "saga")
    {
        var data = Path.Combine(_root, $"data-{variant.Name}-{label}-{Guid.NewGuid():N}");
        _data.Add(data);
        return RunnerChild.Start(runner, new Dictionary<string, string>(variant.Environment, StringComparer.Ordinal)
        {
            ["RUNNER_NATS_URL"] = _nats.Url,
            ["RUNNER_MODE"] = mode,
            ["RUNNER_MANIFESTS"] = manifests,
            ["RUNNER_DATA_DIR"] = data,
            ["RUNNER_WORKER_ID"] = "cold-" + variant.Name,
        });
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        await _nats.DisposeAsync();
        foreach (var data in _data)
        {
            try
            {
                if (Directory.Exists(data))
                {
                    Directory.Delete(data, recursive: true);
                }
            }
            catch (IOException)
            {
                // the runner is still going away; the run's root is removed at the end
            }
        }
    }
}
