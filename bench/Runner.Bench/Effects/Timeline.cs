using System.Diagnostics;
using System.Globalization;

namespace Runner.Bench.Effects;

/// <summary>
/// Per-item timestamps (µs since the bench's epoch) of one run, by stage (0 = published; the last
/// stage = finished). Items are named <c>{prefix}{n}</c> — a saga instance's key or a command's id —
/// so callbacks from anywhere (transition listener, upstream, effect worker log) find their slot.
/// Each slot is written once; later marks of the same slot count as duplicates.
/// </summary>
internal sealed class Timeline
{
    private int _finished;
    private int _failed;
    private int _duplicates;

    public Timeline(char prefix, int count, int stages, int offset)
    {
        Prefix = prefix;
        Count = count;
        Offset = offset;
        Stages = new long[stages][];
        for (var s = 0; s < stages; s++)
        {
            Stages[s] = new long[count];
            Array.Fill(Stages[s], -1L);
        }
    }

    public char Prefix { get; }
    public int Count { get; }

    /// <summary>Item n is named <c>{prefix}{offset + n}</c>: rounds of one prefix get distinct ids.</summary>
    public int Offset { get; }

    public long[][] Stages { get; }
    public int Last => Stages.Length - 1;

    /// <summary>Released once per item that reaches the last stage (sequential probes wait on it).</summary>
    public SemaphoreSlim Finished { get; } = new(0, int.MaxValue);

    public int FinishedCount => Volatile.Read(ref _finished);
    public int Failed => Volatile.Read(ref _failed);
    public int Duplicates => Volatile.Read(ref _duplicates);

    /// <summary>When the last item finished (µs), or -1.</summary>
    public long LastFinishedUs { get; private set; } = -1;

    public string Id(int n) => Prefix + (Offset + n).ToString(CultureInfo.InvariantCulture);

    public void Mark(int stage, int n, long now, bool failed = false)
    {
        if (Interlocked.CompareExchange(ref Stages[stage][n], now, -1) != -1)
        {
            Interlocked.Increment(ref _duplicates);
            return;
        }
        if (stage != Last)
        {
            return;
        }
        if (failed)
        {
            Interlocked.Increment(ref _failed);
        }
        if (Interlocked.Increment(ref _finished) == Count)
        {
            LastFinishedUs = now;
        }
        Finished.Release();
    }

    /// <summary>Differences <c>Stages[to][i] - Stages[from][i]</c> where both were recorded.</summary>
    public Percentiles Span(int from, int to)
    {
        var a = Stages[from];
        var b = Stages[to];
        return new Percentiles(Enumerable.Range(0, Count).Where(i => a[i] >= 0 && b[i] >= 0).Select(i => b[i] - a[i]));
    }

    public long FirstPublishedUs => Stages[0].Where(t => t >= 0).DefaultIfEmpty(-1).Min();
}

/// <summary>The bench's clock and the timelines of the runs under way, found by an item's prefix letter.</summary>
internal sealed class Timelines
{
    private readonly long _epoch = Stopwatch.GetTimestamp();
    private readonly Timeline?[] _byPrefix = new Timeline?[26];

    public long NowUs() => (long)Stopwatch.GetElapsedTime(_epoch).TotalMicroseconds;

    public Timeline Begin(char prefix, int count, int stages, int offset = 0)
    {
        var timeline = new Timeline(prefix, count, stages, offset);
        Volatile.Write(ref _byPrefix[prefix - 'a'], timeline);
        return timeline;
    }

    /// <summary>Marks <paramref name="stage"/> of the item named <paramref name="id"/>; ids of no run under way are ignored.</summary>
    public void Mark(string id, int stage, bool failed = false)
    {
        if (id.Length < 2 || id[0] is < 'a' or > 'z'
            || Volatile.Read(ref _byPrefix[id[0] - 'a']) is not { } timeline
            || !int.TryParse(id.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            || stage > timeline.Last)
        {
            return;
        }
        var n = number - timeline.Offset;
        if (n >= 0 && n < timeline.Count)
        {
            timeline.Mark(stage, n, NowUs(), failed);
        }
    }
}
