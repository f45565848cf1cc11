namespace Runner.Bench;

/// <summary>
/// Per-event timestamps (microseconds since the bench started) for one phase: publish, PubAck,
/// inbox arrival, LMDB commit, command arrival. Each slot is written once; counters are atomic.
/// </summary>
internal sealed class PhaseTrack
{
    public PhaseTrack(int phase, int count)
    {
        Phase = phase;
        Count = count;
        Published = Filled(count);
        PubAcked = Filled(count);
        Inbox = Filled(count);
        Committed = Filled(count);
        Commanded = Filled(count);
        EndToEnd = Filled(count);
    }

    public int Phase { get; }
    public int Count { get; }
    public long[] Published { get; }
    public long[] PubAcked { get; }
    public long[] Inbox { get; }
    public long[] Committed { get; }
    public long[] Commanded { get; }

    /// <summary>Command arrival minus the publish time carried in the command payload (µs).</summary>
    public long[] EndToEnd { get; }

    private int _acks;
    private int _commits;
    private int _commands;
    private int _duplicateCommands;
    private int _duplicateCommits;

    public int Acks => Volatile.Read(ref _acks);
    public int Commits => Volatile.Read(ref _commits);
    public int Commands => Volatile.Read(ref _commands);
    public int DuplicateCommands => Volatile.Read(ref _duplicateCommands);
    public int DuplicateCommits => Volatile.Read(ref _duplicateCommits);

    /// <summary>Time the last expected command arrived (µs), or -1.</summary>
    public long LastCommandUs { get; private set; } = -1;

    public long LastCommitUs { get; private set; } = -1;

    public void Ack(int n, long now)
    {
        PubAcked[n] = now;
        Interlocked.Increment(ref _acks);
    }

    public void Commit(int n, long now)
    {
        if (Interlocked.CompareExchange(ref Committed[n], now, -1) != -1)
        {
            Interlocked.Increment(ref _duplicateCommits);
            return;
        }
        if (Interlocked.Increment(ref _commits) == Count)
        {
            LastCommitUs = now;
        }
    }

    /// <summary>A command arrived; <paramref name="publishedUs"/> is the publish time read back from its payload.</summary>
    public void Command(int n, long now, long publishedUs)
    {
        if (Interlocked.CompareExchange(ref Commanded[n], now, -1) != -1)
        {
            Interlocked.Increment(ref _duplicateCommands);
            return;
        }
        if (publishedUs >= 0)
        {
            EndToEnd[n] = now - publishedUs;
        }
        if (Interlocked.Increment(ref _commands) == Count)
        {
            LastCommandUs = now;
        }
    }

    /// <summary>Differences <c>to[i] - from[i]</c> where both were recorded.</summary>
    public static IEnumerable<long> Span(long[] from, long[] to)
    {
        for (var i = 0; i < from.Length; i++)
        {
            if (from[i] >= 0 && to[i] >= 0)
            {
                yield return to[i] - from[i];
            }
        }
    }

    private static long[] Filled(int count)
    {
        var array = new long[count];
        Array.Fill(array, -1L);
        return array;
    }
}
