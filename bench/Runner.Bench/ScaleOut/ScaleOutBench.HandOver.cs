using System.Diagnostics;

namespace Runner.Bench.ScaleOut;

internal sealed partial class ScaleOutBench
{
    private const double TargetHandOverP99Ms = 2_000;

    /// <summary>
    /// (1) Replica a holds every partition and the state; b starts and takes half (a hands them
    /// over); b drains and they come back; b resumes; and so on. Each partition's move is timed
    /// from the old owner's "handing over" to the new owner's worker start.
    /// </summary>
    private async Task HandOverAsync(CancellationToken cancellationToken)
    {
        var options = Options("so1");
        var partitions = options.Partitions;
        var moving = partitions / 2;
        _output.WriteLine();
        _output.WriteLine(Text.Inv($"(1) cooperative hand-over: a holds {partitions} partitions and {StateInstances} instances; b joins ({moving} move a→b), b drains ({moving} move back), b resumes, … × {_options.HandOverRounds} rounds"));
        _output.WriteLine(Text.Inv($"    lease {options.PartitionLease.TotalSeconds:F0} s, snapshot interval {options.SnapshotInterval.TotalSeconds:F0} s (defaults); a trickle of {TrickleRate} events/s runs throughout; b's volume starts empty"));
        await FreshAsync(options, cancellationToken);
        var a = Replica("handover", "a");
        var b = Replica("handover", "b");
        try
        {
            await StartHoldingAsync(a, options, partitions, cancellationToken);
            await LoadAsync(a, StateInstances, phase: 1, cancellationToken);
            await using var trickle = Trickle.Start(_js, TrickleRate, StateInstances, phase: 2, cancellationToken);
            var commits = CommitsOf(a, b);
            var begin = Stopwatch.GetTimestamp();
            var perRound = new List<(int Round, string Direction, List<Move> Moves, long Jit)>();
            for (var round = 1; round <= _options.HandOverRounds; round++)
            {
                var jit = System.Runtime.JitInfo.GetCompiledMethodCount();
                var mark = Stopwatch.GetTimestamp();
                if (round == 1)
                {
                    await b.StartAsync(_url, _manifests, options, cancellationToken);
                }
                else
                {
                    await b.Runtime!.ResumeAsync(cancellationToken);
                }
                Require(await WaitAsync(() => Served(mark, "a", moving, commits), TimeSpan.FromSeconds(30), cancellationToken), $"round {round}: {moving} partitions served by b");
                perRound.Add((round, "a→b", await SettledAsync(mark, "a", commits, cancellationToken), System.Runtime.JitInfo.GetCompiledMethodCount() - jit));

                jit = System.Runtime.JitInfo.GetCompiledMethodCount();
                var back = Stopwatch.GetTimestamp();
                await DrainAsync(b, cancellationToken);
                Require(await WaitAsync(() => Served(back, "b", moving, commits), TimeSpan.FromSeconds(30), cancellationToken), $"round {round}: {moving} partitions served by a again");
                perRound.Add((round, "b→a", await SettledAsync(back, "b", commits, cancellationToken), System.Runtime.JitInfo.GetCompiledMethodCount() - jit));
            }
            PrintHandOvers(perRound, Moves.HandOvers(_journal.Since(begin), commits), trickle);
        }
        finally
        {
            await b.StopAsync();
            await a.StopAsync();
        }
    }

    /// <summary>
    /// The moves from <paramref name="from"/> since <paramref name="since"/>, once each new owner has
    /// committed a first batch of the trickle (at most 5 s): the next move does not start before.
    /// </summary>
    private async Task<List<Move>> SettledAsync(long since, string from, Func<string, CommitLog?> commits, CancellationToken cancellationToken)
    {
        List<Move> Current() => [.. Moves.HandOvers(_journal.Since(since), commits).Where(m => m.From == from)];
        await WaitAsync(() => Current().All(m => m.FirstCommit is not null), TimeSpan.FromSeconds(5), cancellationToken);
        return Current();
    }

    private bool Served(long since, string from, int count, Func<string, CommitLog?> commits) =>
        Moves.HandOvers(_journal.Since(since), commits).Count(m => m.From == from && m.Started is not null) >= count;

    private void PrintHandOvers(List<(int Round, string Direction, List<Move> Moves, long Jit)> perRound, List<Move> all, Trickle trickle)
    {
        foreach (var (round, direction, moves, jit) in perRound)
        {
            var serving = Moves.Span(moves, m => m.Start, m => m.Started);
            var released = Moves.Span(moves, m => m.Start, m => m.Released);
            _output.WriteLine(Text.Inv($"  round {round} {direction}: {moves.Count,2} partitions  serving after p50 {serving.Ms(50),7:F1}  max {serving.MaxMs,7:F1} ms  (old owner's part: p50 {released.Ms(50),6:F1} ms); {moves.Count(m => m.Restored)} restored; JIT compiled {jit} methods meanwhile"));
        }
        var cold = perRound.Count > 0 ? perRound[0].Moves : [];
        var warm = perRound.Skip(1).SelectMany(r => r.Moves).ToList();
        _output.WriteLine(Text.Inv($"  all {all.Count} hand-overs (trickle: {trickle.Sent} events sent, {trickle.Errors} errors):"));
        Moves.Print(_output, "    ", "hand-over start", all);
        var coldServing = Moves.Span(cold, m => m.Start, m => m.Started);
        var warmServing = Moves.Span(warm, m => m.Start, m => m.Started);
        _output.WriteLine(Text.Inv($"    cold (the first {cold.Count}, a→b in round 1: the first hand-overs and restores in this process): p50 {coldServing.Ms(50):F1}  p99 {coldServing.Ms(99):F1}  max {coldServing.MaxMs:F1} ms"));
        _output.WriteLine(Text.Inv($"    warm (the other {warm.Count}):                                                          p50 {warmServing.Ms(50):F1}  p99 {warmServing.Ms(99):F1}  max {warmServing.MaxMs:F1} ms"));
        var total = Moves.Span(all, m => m.Start, m => m.Started);
        var old = Moves.Span(all, m => m.Start, m => m.Released);
        _output.WriteLine(Text.Inv($"    ratio: old owner's part (start → released) / whole move, at p50: {old.Ms(50) / total.Ms(50):F2}; p99 / target: {total.Ms(99) / TargetHandOverP99Ms:F2}"));
        var complete = all.Count > 0 && all.All(m => m.Started is not null);
        Judge("(1) hand-over → serving, p99 over all", Text.Inv($"p99 {total.Ms(99):F0} ms (p50 {total.Ms(50):F0}, max {total.MaxMs:F0}, n={total.Count})"), Text.Inv($"p99 ≤ {TargetHandOverP99Ms:F0} ms"),
            complete && total.Ms(99) <= TargetHandOverP99Ms);
    }
}
