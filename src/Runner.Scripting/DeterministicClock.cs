using System.Globalization;
using Jint.Runtime;

namespace Runner.Scripting;

/// <summary>The script's only clock: it reads the event's time, set before each call, in UTC.</summary>
internal sealed class DeterministicClock() : DefaultTimeSystem(TimeZoneInfo.Utc, CultureInfo.InvariantCulture)
{
    public long NowMs { get; set; }

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(NowMs);
}

/// <summary>SplitMix64: small, fast, and the same sequence everywhere for the same seed.</summary>
internal sealed class SeededRandom
{
    private ulong _state;
    private string? _unseededFor;

    public void Seed(ulong seed)
    {
        _state = seed;
        _unseededFor = null;
    }

    /// <summary>
    /// Seeds from the event id (<see cref="Core.Ids.CommandIds.SeedFrom"/>) at the first draw, not
    /// now: most transitions draw nothing, and the seed is a hash. The sequence is the same.
    /// </summary>
    public void SeedLazily(string eventId) => _unseededFor = eventId;

    public double NextDouble()
    {
        if (_unseededFor is { } eventId)
        {
            Seed(Core.Ids.CommandIds.SeedFrom(eventId));
        }
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
