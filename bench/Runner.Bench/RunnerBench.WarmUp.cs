using System.Diagnostics;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    /// <summary>Events through the runtime that are not measured: JIT, sandboxes, consumers, LMDB pages.</summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        if (_options.Warmup == 0)
        {
            return;
        }

        // Rounds of load, each followed by a pause: the tiered JIT promotes hot methods only after a
        // quiet period, so one long burst leaves most of its tier-1 work to the measured phase.
        // Stop when a round compiles few new methods (at most 5 rounds).
        var perRound = Math.Max(1, _options.Warmup / 2);
        for (var round = 1; round <= 5; round++)
        {
            var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
            var phase = Tracker.WarmupPhase + round; // distinct event ids per round (the runtime dedupes by id)
            var track = Tracker.Begin(phase, perRound);
            var started = Stopwatch.GetTimestamp();
            await Publisher.PipelinedAsync(PublisherJs, track.Count, _options.Window, i => (Wire.Subject(i % _options.Keys), Wire.Event(phase, i, Tracker.NowUs())), null, cancellationToken);
            var done = await WaitAsync(() => track.Commands >= track.Count, TimeSpan.FromSeconds(120), cancellationToken);
            var loadSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var duringLoad = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
            await WaitForIdleAsync(cancellationToken);
            var settled = await SettleJitAsync(cancellationToken);
            var total = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
            _output.WriteLine(Text.Inv($"  warm-up round {round}: {track.Commands}/{track.Count} commands in {loadSeconds:F2} s ({track.Count / loadSeconds:F0}/s){(done ? string.Empty : " (INCOMPLETE)")}; JIT compiled {duringLoad} methods under load, {total} with the pause ({settled:F1} s)"));
            if (round >= 2 && duringLoad < 300)
            {
                break;
            }
        }
        await PrintRouterConsumerAsync("after warm-up", cancellationToken);
    }

    /// <summary>Waits (at most 15 s) until the JIT compiles fewer than 10 methods in half a second.</summary>
    internal static async Task<double> SettleJitAsync(CancellationToken cancellationToken)
    {
        var settle = Stopwatch.GetTimestamp();
        var methods = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (var i = 0; i < 30; i++)
        {
            await Task.Delay(500, cancellationToken);
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            var delta = now - methods;
            methods = now;
            if (delta < 10)
            {
                break;
            }
        }
        return Stopwatch.GetElapsedTime(settle).TotalSeconds;
    }
}
