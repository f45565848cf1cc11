using System.Diagnostics;
using Runner.Sagas.Partitions;

namespace Runner.Bench;

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
