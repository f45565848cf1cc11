using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Runner.Sagas.Partitions;

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

/// <summary>The clock and the phases; also the transition listener the runtime reports commits to.</summary>
internal sealed class Tracker : ITransitionListener
{
    private readonly long _epoch = Stopwatch.GetTimestamp();
    /// <summary>Warm-up rounds use phases 10, 11, ...</summary>
    public const int WarmupPhase = 10;

    private readonly PhaseTrack?[] _phases = new PhaseTrack?[16];
    private long _otherCommits;

    public long NowUs() => (long)Stopwatch.GetElapsedTime(_epoch).TotalMicroseconds;

    public long OtherCommits => Interlocked.Read(ref _otherCommits);

    public PhaseTrack Begin(int phase, int count)
    {
        var track = new PhaseTrack(phase, count);
        Volatile.Write(ref _phases[phase], track);
        return track;
    }

    public PhaseTrack? Phase(int phase) => phase >= 0 && phase < _phases.Length ? Volatile.Read(ref _phases[phase]) : null;

    public void OnCommitted(IReadOnlyList<TransitionNotice> notices)
    {
        var now = NowUs();
        foreach (var notice in notices)
        {
            if (Wire.TryParseEventId(notice.EventId, out var phase, out var n) && Phase(phase) is { } track && n < track.Count)
            {
                track.Commit(n, now);
            }
            else
            {
                Interlocked.Increment(ref _otherCommits);
            }
        }
    }

    /// <summary>Records an observed message whose JSON carries <c>{container}: {p, n}</c>.</summary>
    public void Observe(ReadOnlySpan<byte> json, string container, bool command)
    {
        var now = NowUs();
        if (!Wire.TryReadMarker(json, container, out var phase, out var n, out var publishedUs) || Phase(phase) is not { } track || n < 0 || n >= track.Count)
        {
            return;
        }
        if (command)
        {
            track.Command(n, now, publishedUs);
        }
        else if (track.Inbox[n] < 0)
        {
            track.Inbox[n] = now;
        }
    }
}

/// <summary>Event bytes the bench publishes, and the markers it reads back.</summary>
internal static class Wire
{
    public const string Tenant = "acme";
    public const string Saga = "bench";

    public static string Subject(int key) => string.Create(CultureInfo.InvariantCulture, $"aggregate.{Tenant}.{Saga}.k{key}.ticked");

    /// <summary>A structured CloudEvent; data carries the phase, the event number and the publish time.</summary>
    public static byte[] Event(int phase, int n, long publishedUs) => Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
        $$$"""{"specversion":"1.0","id":"{{{phase}}}-{{{n}}}","source":"bench","type":"ticked","datacontenttype":"application/json","data":{"p":{{{phase}}},"n":{{{n}}},"t":{{{publishedUs}}}}}"""));

    public static bool TryParseEventId(string id, out int phase, out int n)
    {
        phase = -1;
        n = -1;
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return dash > 0
            && int.TryParse(id.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out phase)
            && int.TryParse(id.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out n);
    }

    /// <summary>Finds the top-level object <paramref name="container"/> and reads its "p" and "n".</summary>
    public static bool TryReadMarker(ReadOnlySpan<byte> json, string container, out int phase, out int n, out long publishedUs)
    {
        phase = -1;
        n = -1;
        publishedUs = -1;
        try
        {
            var reader = new Utf8JsonReader(json);
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    continue;
                }
                if (!reader.ValueTextEquals(container))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return false;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var isP = reader.ValueTextEquals("p");
                    var isN = reader.ValueTextEquals("n");
                    var isT = reader.ValueTextEquals("t");
                    reader.Read();
                    if (isP && reader.TokenType == JsonTokenType.Number)
                    {
                        phase = reader.GetInt32();
                    }
                    else if (isN && reader.TokenType == JsonTokenType.Number)
                    {
                        n = reader.GetInt32();
                    }
                    else if (isT && reader.TokenType == JsonTokenType.Number)
                    {
                        publishedUs = reader.GetInt64();
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                return phase >= 0 && n >= 0;
            }
        }
        catch (JsonException)
        {
            return false;
        }
        return false;
    }
}
