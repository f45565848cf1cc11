using System.Diagnostics;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Bench.Effects;
using Runner.Testing;

namespace Runner.Bench;

internal static class Program
{
    private const double TargetRate = 10_000;
    private const double TargetRatio = 0.2;
    private const double TargetP99Ms = 20;

    public static async Task<int> Main(string[] args)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine(BenchOptions.Usage);
            return 0;
        }
        var options = BenchOptions.Parse(args, Console.Error);
        if (options is null)
        {
            return 2;
        }
        using var overall = new CancellationTokenSource(TimeSpan.FromSeconds(options.TimeoutSeconds));
        using var interrupt = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            interrupt.Cancel();
        };
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(overall.Token, interrupt.Token);
        try
        {
            if (options.Launch)
            {
                await Launch.LaunchBench.RunAsync(options.Launches, options.LaunchGapMs, options.SliceBin, Console.Out, linked.Token);
                return 0;
            }
            if (options.Cold)
            {
                return await Cold.ColdBench.RunAsync(options, Console.Out, linked.Token);
            }
            if (options.ScaleOut)
            {
                return await ScaleOut.ScaleOutBench.RunAsync(options, Console.Out, linked.Token);
            }
            if (options.Micro)
            {
                await Micro.RunAsync(options, Console.Out, linked.Token);
                return 0;
            }
            return await RunAsync(options, Console.Out, linked.Token);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            Console.Error.WriteLine(overall.IsCancellationRequested ? Text.Inv($"timed out after {options.TimeoutSeconds} s") : "interrupted");
            return 3;
        }
    }

    private static async Task<int> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var nats = new NatsServerFixture();
        await nats.InitializeAsync().WaitAsync(cancellationToken);
        try
        {
            var port = new Uri(nats.Url).Port;
            var natsPid = CpuSnapshot.FindNatsServer(port);
            output.WriteLine(Text.Inv($"Runner.Bench  events={options.Events} keys={options.Keys} partitions={options.Partitions} batch={options.Batch} window={options.Window} rate={options.Rate}/s seconds={options.Seconds} durable={options.Durable} round-trips={options.RoundTrips} commands={options.Commands} effect-concurrency={options.EffectConcurrency?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default"}"));
            output.WriteLine(Text.Inv($"  nats-server {nats.Url} (pid {natsPid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "external"}), {Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}"));
            output.WriteLine(Text.Inv($"  machine load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on this machine skews every figure)"));
            output.WriteLine(MachineSpeed.Line("at start"));
            var tracker = new Tracker();

            BaselineResult? baseline = null;
            if (options.Baseline)
            {
                output.WriteLine();
                output.WriteLine("(a) baseline: raw JetStream on the same server, same payload, stream BENCH_RAW");
                await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, Name = "bench-baseline" });
                await connection.ConnectAsync();
                baseline = await Baseline.RunAsync(new NatsJSContext(connection), options, tracker, natsPid, output, cancellationToken);
            }

            RunnerBench.ThroughputResult? throughput = null;
            RunnerBench.LatencyResult? latency = null;
            long quarantined = 0;
            if (options.Throughput || options.Latency || options.Isolate || options.CheckDuplicates)
            {
                await using var bench = await RunnerBench.StartAsync(nats.Url, options, tracker, natsPid, output, cancellationToken);
                output.WriteLine();
                output.WriteLine("    runtime: router on AGGREGATE_EVENTS → runner.inbox.{p} → partition workers (Jint + one LMDB txn per batch, group commit) → outbox relay → WORKFLOW_COMMANDS");
                await bench.WarmUpAsync(cancellationToken);
                if (options.Throughput)
                {
                    output.WriteLine();
                    output.WriteLine("(b) Runner end to end: pipelined publish → command on workflow.cmd.> (core subscription)");
                    throughput = await bench.ThroughputAsync(cancellationToken);
                }
                if (options.Isolate)
                {
                    output.WriteLine();
                    output.WriteLine(Text.Inv($"(isolate) each stage alone on {options.Events} pre-published events"));
                    await bench.IsolateAsync(cancellationToken);
                }
                if (options.Latency)
                {
                    output.WriteLine();
                    output.WriteLine(Text.Inv($"(c) latency at a paced {options.Rate} events/s for {options.Seconds} s"));
                    latency = await bench.LatencyAsync(cancellationToken);
                }
                if (options.CheckDuplicates)
                {
                    output.WriteLine();
                    output.WriteLine("(check) publishes that meet the server's duplicate window");
                    await bench.CheckDuplicatesAsync(cancellationToken);
                }
                quarantined += bench.Quarantined;
            }

            EffectsBench.RoundTripResult? roundTrip = null;
            EffectsBench.ClaimsResult? claims = null;
            if (options.Effects)
            {
                await using var effects = await EffectsBench.StartAsync(nats.Url, options, natsPid, output, cancellationToken);
                output.WriteLine();
                output.WriteLine(Text.Inv($"(d) saga round trips: start event → saga → http command → effect worker → loopback upstream → result → saga done, {options.RoundTrips} instances"));
                output.WriteLine(RoundTripHops);
                roundTrip = await effects.RoundTripAsync(cancellationToken);
                output.WriteLine();
                output.WriteLine(Text.Inv($"(d') the round trip's traffic alone: (d)'s JetStream hops, claim writes and HTTP call through Runner's transport, with nothing between them, {options.RoundTrips} instances"));
                roundTrip.FloorRate = await effects.RoundTripFloorAsync(roundTrip.Concurrency, cancellationToken);
                output.WriteLine();
                output.WriteLine("(e) effect claims: the same commands through a plain consume+ack, then through the effect worker path (no-op provider)");
                claims = await effects.ClaimsAsync(cancellationToken);
                quarantined += effects.Quarantined;
            }

            output.WriteLine();
            output.WriteLine("summary");
            output.WriteLine(MachineSpeed.Line("at the end"));
            if (baseline is not null)
            {
                output.WriteLine(Text.Inv($"  (a) raw JetStream publish        {baseline.PublishRate,9:F0} msgs/s   consume+ack {baseline.ConsumeRate,9:F0} msgs/s   ({baseline.PayloadBytes} B payload)"));
            }
            var ok = true;
            if (throughput is not null)
            {
                output.WriteLine(Text.Inv($"  (b) Runner end to end            {throughput.Rate,9:F0} events/s   target ≥ {TargetRate:F0}: {Verdict(throughput.Rate >= TargetRate)}"));
                ok &= throughput.Rate >= TargetRate;
                if (baseline is not null)
                {
                    var ratio = throughput.Rate / baseline.PublishRate;
                    output.WriteLine(Text.Inv($"      ratio (b)/(a publish)        {ratio,9:F3}            target ≥ {TargetRatio}: {Verdict(ratio >= TargetRatio)}"));
                    ok &= ratio >= TargetRatio;
                }
            }
            if (latency is not null)
            {
                var p99 = latency.EndToEnd.Ms(99);
                output.WriteLine(Text.Inv($"  (c) at {latency.AchievedRate:F0}/s: p50 {latency.EndToEnd.Ms(50):F2} ms  p90 {latency.EndToEnd.Ms(90):F2} ms  p99 {p99:F2} ms  max {latency.EndToEnd.MaxMs:F2} ms   target p99 ≤ {TargetP99Ms}: {Verdict(p99 <= TargetP99Ms && latency.Commands == latency.Expected)}"));
                ok &= p99 <= TargetP99Ms && latency.Commands == latency.Expected;
            }
            if (roundTrip is not null)
            {
                ok &= PrintRoundTrip(output, roundTrip, baseline);
            }
            if (claims is not null)
            {
                ok &= PrintClaims(output, claims);
            }
            output.WriteLine(Text.Inv($"  quarantine records: {quarantined}; machine load average now: {File.ReadAllText("/proc/loadavg").Trim()}"));
            return ok ? 0 : 1;
        }
        finally
        {
            var stop = Stopwatch.StartNew();
            await nats.DisposeAsync();
            Debug.Assert(stop.Elapsed < TimeSpan.FromMinutes(1));
        }
    }

    private static string Verdict(bool met) => met ? "met" : "NOT met";

    private const string RoundTripHops =
        "    one round trip = 5 JetStream publishes and 5 consume+acks (the bench's start event on AGGREGATE_EVENTS, then 4 stream hops inside Runner:\n" +
        "    runner.inbox, WORKFLOW_COMMANDS, WORKFLOW_EVENTS, runner.inbox), 2 LMDB commits, 1 HTTP call, 1 KV create + 1 KV update (claim, completion)";

    /// <summary>(d) in the summary; false when not every saga finished.</summary>
    private static bool PrintRoundTrip(TextWriter output, EffectsBench.RoundTripResult r, BaselineResult? baseline)
    {
        var complete = r.Done == r.Expected && r.Failed == 0;
        output.WriteLine(Text.Inv($"  (d) saga round trips             {r.Rate,9:F0} round trips/s   ({r.Done}/{r.Expected} done, {r.Failed} failed{(complete ? string.Empty : "  INCOMPLETE")})"));
        output.WriteLine(Text.Inv($"      per instance under full load  p50 {r.Loaded.Ms(50):F2} ms  p99 {r.Loaded.Ms(99):F2} ms;  idle (one at a time): p50 {r.Idle.Ms(50):F2} ms  p99 {r.Idle.Ms(99):F2} ms"));
        output.WriteLine(Text.Inv($"      upstream: {r.UpstreamRate:F0} requests/s during (d), {r.UpstreamAloneRate:F0} requests/s alone"));
        if (r.FloorRate is { } floor)
        {
            output.WriteLine(Text.Inv($"      (d') the traffic alone         {floor,9:F0} round trips/s; (d) is {r.Rate / floor:F2} of it"));
        }
        if (baseline is not null)
        {
            var ratio = r.Rate / baseline.ConsumeRate;
            output.WriteLine(Text.Inv($"      ratio (d)/(a consume+ack)    {ratio,9:F3}            (5 consume+acks per round trip alone would cap this at 0.2)"));
        }
        return complete;
    }

    /// <summary>(e) in the summary; false when a run did not finish.</summary>
    private static bool PrintClaims(TextWriter output, EffectsBench.ClaimsResult c)
    {
        var complete = c.One.Complete && c.Two.Complete;
        var addedUs = (1e6 / c.One.Rate) - (1e6 / c.PlainRate);
        output.WriteLine(Text.Inv($"  (e) commands, plain consume+ack {c.PlainRate,9:F0} commands/s"));
        output.WriteLine(Text.Inv($"      claim protocol only         {c.SkeletonRate,9:F0} commands/s   ratio {c.SkeletonRate / c.PlainRate:F3}: what its writes alone allow, pipelined as the worker sends them ({c.ClientSkeletonRate:F0}/s, ratio {c.ClientSkeletonRate / c.PlainRate:F3}, through the client's request-reply API)"));
        output.WriteLine(Text.Inv($"      one effect worker (claim)   {c.One.Rate,9:F0} commands/s   ratio {c.One.Rate / c.PlainRate:F3}, {c.One.Rate / c.SkeletonRate:F2} of the protocol alone; added {addedUs:F0} µs of wall time per command at full load"));
        output.WriteLine(Text.Inv($"      two effect workers          {c.Two.Rate,9:F0} commands/s   ×{c.Two.Rate / c.One.Rate:F2} of one worker (split {string.Join(" + ", c.Two.PerWorker)}){(complete ? string.Empty : "  INCOMPLETE")}"));
        output.WriteLine(Text.Inv($"      idle latency publish → acked p50 plain {c.PlainIdle.Ms(50):F2} ms, claim {c.ClaimIdle.Ms(50):F2} ms → added {c.ClaimIdle.Ms(50) - c.PlainIdle.Ms(50):F2} ms per command (p99 {c.PlainIdle.Ms(99):F2} / {c.ClaimIdle.Ms(99):F2} ms)"));
        return complete;
    }
}
