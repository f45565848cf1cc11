using System.Diagnostics;

namespace Runner.Bench.ScaleOut;

/// <summary>
/// One partition changing owner, as the journal saw it: <see cref="Start"/> (hand-over begun, or
/// the crash), released by the old owner, acquired by the new one, its store prepared (restored
/// from a snapshot or kept), its worker started, its first commit. Times are Stopwatch timestamps.
/// </summary>
internal sealed record Move(int Partition, string From, string To, long Start, long? Released, long? Acquired, long? Prepared, bool Restored, double RestoreMs, long? Started, long? FirstCommit)
{
    /// <summary>Start → worker started on the new owner: the partition is served again.</summary>
    public long? Serving => Started is { } s ? s - Start : null;
}

internal static class Moves
{
    /// <summary>Cooperative hand-overs of partitions begun in <paramref name="events"/>, paired with what the taking replica logged next.</summary>
    public static List<Move> HandOvers(IReadOnlyList<LogEvent> events, Func<string, CommitLog?> commits)
    {
        var moves = new List<Move>();
        foreach (var start in events.Where(e => e.Id == EventJournal.HandingOver && e.Partition >= 0))
        {
            var released = First(events, EventJournal.Released, start.Partition, start.At, r => r == start.Replica);
            // From the start, not the release: the taker may log its acquisition before the old owner logs the release it saw.
            var acquired = First(events, EventJournal.Acquired, start.Partition, start.At, r => r != start.Replica);
            moves.Add(Follow(events, start.Partition, start.Replica, start.At, released?.At, acquired, commits));
        }
        return moves;
    }

    /// <summary>The partitions <paramref name="crashed"/> held, each taken by another replica after <paramref name="killed"/>.</summary>
    public static List<Move> Takeovers(IReadOnlyList<LogEvent> events, string crashed, IEnumerable<int> partitions, long killed, Func<string, CommitLog?> commits) =>
        [.. partitions.Select(p => Follow(events, p, crashed, killed, null, First(events, EventJournal.Acquired, p, killed, r => r != crashed), commits))];

    private static Move Follow(IReadOnlyList<LogEvent> events, int partition, string from, long start, long? released, LogEvent? acquired, Func<string, CommitLog?> commits)
    {
        if (acquired is null)
        {
            return new Move(partition, from, "?", start, released, null, null, false, double.NaN, null, null);
        }
        var to = acquired.Replica;
        var prepared = events.FirstOrDefault(e => e.Partition == partition && e.Replica == to && e.At >= acquired.At
            && e.Id is EventJournal.Restored or EventJournal.LocalKept);
        var started = prepared is null ? null : First(events, EventJournal.PartitionStarted, partition, prepared.At, r => r == to);
        var first = started is null ? null : commits(to)?.FirstAfter(partition, started.At);
        return new Move(partition, from, to, start, released, acquired.At, prepared?.At, prepared?.Id == EventJournal.Restored,
            prepared?.Id == EventJournal.Restored ? prepared.Ms : double.NaN, started?.At, first);
    }

    private static LogEvent? First(IReadOnlyList<LogEvent> events, int id, int partition, long since, Func<string, bool> replica) =>
        events.FirstOrDefault(e => e.Id == id && e.Partition == partition && e.At >= since && replica(e.Replica));

    public static long Us(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;

    /// <summary>Percentiles of <c>to - from</c> over the moves where both are known.</summary>
    public static Percentiles Span(IEnumerable<Move> moves, Func<Move, long?> from, Func<Move, long?> to) =>
        new(moves.Where(m => from(m) is not null && to(m) is not null).Select(m => Us(to(m)!.Value - from(m)!.Value)));

    /// <summary>The total (start → worker started) and each step of it.</summary>
    public static void Print(TextWriter output, string indent, string startLabel, IReadOnlyList<Move> moves)
    {
        var lost = moves.Count(m => m.Started is null);
        output.WriteLine(Text.Inv($"{indent}{startLabel} → worker serving on the new owner  {Span(moves, m => m.Start, m => m.Started).Summary()}{(lost > 0 ? Text.Inv($"  ({lost} NOT served in time)") : string.Empty)}"));
        if (moves.Any(m => m.Released is not null))
        {
            output.WriteLine(Text.Inv($"{indent}  start → released (old owner: stop intake, finish batch, flush outbox, snapshot, release)  {Span(moves, m => m.Start, m => m.Released).Summary()}"));
            output.WriteLine(Text.Inv($"{indent}  released → acquired (bucket watch, new owner's round)                                 {Span(moves, m => m.Released, m => m.Acquired).Summary()}"));
        }
        else
        {
            output.WriteLine(Text.Inv($"{indent}  kill → acquired (the lease runs out, new owner's round)                               {Span(moves, m => m.Start, m => m.Acquired).Summary()}"));
        }
        output.WriteLine(Text.Inv($"{indent}  acquired → store ready (old consumers deleted, horizon, download + restore or keep)       {Span(moves, m => m.Acquired, m => m.Prepared).Summary()}"));
        output.WriteLine(Text.Inv($"{indent}  store ready → worker started                                                           {Span(moves, m => m.Prepared, m => m.Started).Summary()}"));
        output.WriteLine(Text.Inv($"{indent}  worker started → first commit (consumer attach, first batch of the trickle)             {Span(moves, m => m.Started, m => m.FirstCommit).Summary()}"));
        var restored = moves.Where(m => m.Restored).ToList();
        var restoreMs = new Percentiles(restored.Select(m => (long)(m.RestoreMs * 1000)));
        output.WriteLine(Text.Inv($"{indent}  {restored.Count} of {moves.Count} restored from a snapshot (restore as logged: p50 {restoreMs.Ms(50):F1} ms, max {restoreMs.MaxMs:F1} ms), {moves.Count(m => m.Prepared is not null && !m.Restored)} kept the local store"));
    }
}
