using System.Diagnostics;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Testing;

namespace Runner.Bench;

internal static class Program
{
    private const double TargetRate = 10_000;
    private const double TargetRatio = 0.2;
    private const double TargetP99Ms = 50;

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
            output.WriteLine(Text.Inv($"Runner.Bench  events={options.Events} keys={options.Keys} partitions={options.Partitions} batch={options.Batch} window={options.Window} rate={options.Rate}/s seconds={options.Seconds} durable={options.Durable}"));
            output.WriteLine(Text.Inv($"  nats-server {nats.Url} (pid {natsPid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "external"}), {Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}"));
            output.WriteLine(Text.Inv($"  machine load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on this machine skews every figure)"));
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
            long quarantined;
            await using (var bench = await RunnerBench.StartAsync(nats.Url, options, tracker, natsPid, output, cancellationToken))
            {
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
                quarantined = bench.Quarantined;
            }

            output.WriteLine();
            output.WriteLine("summary");
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
}
