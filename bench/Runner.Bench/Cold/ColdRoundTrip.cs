using System.Diagnostics;
using NATS.Client.Core;
using Runner.Bench.Effects;

namespace Runner.Bench.Cold;

/// <summary>
/// The <c>roundtrip</c> mode of <c>--cold</c>: (d)'s saga round trips in a fresh <c>runner serve</c> of its own (combined
/// mode: saga and effect worker in one process, as a small deployment runs them), against a loopback upstream in
/// the bench's process. One start event per instance; its saga sends an http command; the effect worker claims it
/// and calls the upstream; the result comes back and its second transition finishes the instance. Two bursts: the
/// first into the fresh process, the second into the same process warm. A burst is over when the runner's own
/// transition counter (<c>/metrics</c>) has every instance's two transitions; the result events, counted on a core
/// subscription, say when to start reading it, so the runner is scraped only at the tail.
/// </summary>
internal static class ColdRoundTrip
{
    private const string Tenant = "acme";

    private static (string Subject, byte[] Data) StartEvent(int n) =>
        ($"aggregate.{Tenant}.trip.t{n}.created",
         System.Text.Encoding.UTF8.GetBytes(Text.Inv($$$"""{"specversion":"1.0","id":"trip-t{{{n}}}","source":"bench","type":"trip.created","datacontenttype":"application/json","data":{"n":{{{n}}}}}""")));

    public static async Task<RoundTripColdResult?> MeasureAsync(string runner, string root, ColdVariant variant, BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var n = options.RoundTrips;
        await using var upstream = await LoopbackUpstream.StartAsync(cancellationToken);
        var manifests = Path.Combine(root, $"trip-{Guid.NewGuid():N}");
        Directory.CreateDirectory(manifests);
        await File.WriteAllTextAsync(Path.Combine(manifests, "trip.yaml"), EffectsBench.TripManifest, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifests, "trip.js"), EffectsBench.TripScript, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifests, "effects.yaml"), EffectsBench.TripEffectYaml(upstream.Url, options.EffectConcurrency), cancellationToken);

        await using var run = await ColdRun.StartAsync(root, cancellationToken);
        var results = 0;
        await using var subscription = await run.Connection.SubscribeCoreAsync<byte[]>($"workflow.evt.{Tenant}.trip.call.>", cancellationToken: cancellationToken);
        var counting = Task.Run(async () =>
        {
            await foreach (var _ in subscription.Msgs.ReadAllAsync(cancellationToken))
            {
                Interlocked.Increment(ref results);
            }
        }, cancellationToken);

        using var process = run.StartRunner(runner, manifests, variant, "trip", mode: "combined");
        if (await process.ReadyOrFailedAsync(output, cancellationToken) is not { } ready)
        {
            return null;
        }
        output.WriteLine(Text.Inv($"  ready {ready.TotalMilliseconds:N0} ms after start (combined mode: saga 'trip' and its http effect in one process); {n:N0} instances in a burst, twice"));
        var limit = TimeSpan.FromSeconds(60 + (n / 500));

        async Task<Burst?> BurstAsync(int first, string what)
        {
            var requests0 = upstream.Requests;
            var gc0 = await process.MetricsAsync(cancellationToken);
            var cpu0 = Cpu(process.Pid, run.NatsPid);
            var t0 = Stopwatch.GetTimestamp();
            var errors = await Publisher.PipelinedAsync(run.Js, n, options.Window, i => StartEvent(first + i), null, cancellationToken);
            var published = Stopwatch.GetElapsedTime(t0);
            var expected = 2L * (first + n);
            var transitions = 0L;
            while (Stopwatch.GetElapsedTime(t0) < limit && !process.HasExited)
            {
                // Scraped only once every result is out: what is left is the last instances' second transitions.
                if (Volatile.Read(ref results) >= first + n
                    && (transitions = await process.CounterAsync("runner_saga_transitions_total", cancellationToken) ?? 0) >= expected)
                {
                    break;
                }
                await Task.Delay(Volatile.Read(ref results) >= first + n ? 5 : 20, cancellationToken);
            }
            var took = Stopwatch.GetElapsedTime(t0);
            var cpu1 = Cpu(process.Pid, run.NatsPid);
            if (transitions < expected)
            {
                output.WriteLine(Text.Inv($"  FAILED: {what}: {Volatile.Read(ref results) - first:N0} of {n:N0} results, {transitions:N0} of {expected:N0} transitions after {took.TotalSeconds:F0} s{(process.HasExited ? $"; the runner exited with {process.ExitCode}" : string.Empty)}"));
                output.WriteLine(process.Tail());
                return null;
            }
            var gc1 = await process.MetricsAsync(cancellationToken);
            var burst = new Burst(n / took.TotalSeconds, (cpu1.Runner - cpu0.Runner) * 1e6 / n, (cpu1.Nats - cpu0.Nats) * 1e6 / n,
                gc0 is { } g0 && gc1 is { } g1 ? g1.Since(g0, n) : null);
            output.WriteLine(Text.Inv($"  {what}: {n:N0} start events published in {published.TotalSeconds:F2} s{(errors > 0 ? $" ({errors} failed)" : string.Empty)}; all {n:N0} instances done after {took.TotalSeconds:F2} s → {burst.Rate:N0} round trips/s; upstream called {upstream.Requests - requests0:N0} times"));
            output.WriteLine(Text.Inv($"    cpu per round trip: runner {burst.RunnerUs:F0} µs, nats-server {burst.NatsUs:F0} µs; runner GC: {burst.Gc?.ToString() ?? "no reading"}"));
            return burst;
        }

        if (await BurstAsync(0, "first burst (fresh process)") is not { } cold
            || await BurstAsync(n, "second burst (warm)") is not { } warm)
        {
            return null;
        }
        await subscription.UnsubscribeAsync();
        await counting;
        await process.StopAsync(TimeSpan.FromSeconds(20));
        return new RoundTripColdResult(variant.Name, n, cold, warm);
    }

    private static (double Runner, double Nats) Cpu(int runner, int? nats) =>
        (CpuSnapshot.ProcessSeconds($"/proc/{runner}/stat"), nats is { } pid ? CpuSnapshot.ProcessSeconds($"/proc/{pid}/stat") : double.NaN);

    /// <summary>One burst: round trips per second, CPU per round trip in the runner and in nats-server, the runner's GC over it.</summary>
    internal sealed record Burst(double Rate, double RunnerUs, double NatsUs, MetricsWindow? Gc);
}

/// <summary>What one fresh process did with two bursts of saga round trips.</summary>
internal sealed record RoundTripColdResult(string Variant, int Instances, ColdRoundTrip.Burst Cold, ColdRoundTrip.Burst Warm)
{
    public void Print(TextWriter output) =>
        output.WriteLine(Text.Inv($"  round trips/s first burst {Cold.Rate:N0}, warm {Warm.Rate:N0} (target ≥ 5,000); cpu per round trip runner {Cold.RunnerUs:F0} / {Warm.RunnerUs:F0} µs, nats-server {Cold.NatsUs:F0} / {Warm.NatsUs:F0} µs (first / warm)"));
}
