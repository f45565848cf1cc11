namespace Runner.Effects.Workers;

/// <summary>
/// How many commands a worker claims ahead of its free slots, so that a slot coming free finds
/// its next command already claimed instead of waiting a claim's round trip. By Little's law, slots
/// come free at <c>concurrency / run</c> per unit of time and a claim takes <c>claim</c>, so
/// <c>concurrency × claim / run</c> commands claimed ahead keep every slot busy. Short effects (a
/// publish, a quick HTTP call) get up to <c>factor × concurrency</c>; effects that run much longer than
/// a claim get none, so a slow effect's commands are not held claimed on one worker while another is
/// idle. Nothing is claimed ahead until a command has been claimed and one has run.
/// </summary>
internal sealed class ClaimAhead
{
    /// <summary>Weight of the newest duration in the running averages.</summary>
    private const double Weight = 1.0 / 16;

    private readonly int _concurrency;
    private readonly int _max;
    private readonly Action<int> _resized;
    private readonly Lock _gate = new();
    private double _claimMs = -1;
    private double _runMs = -1;

    /// <param name="concurrency">The effect's slots.</param>
    /// <param name="factor">At most this many times <paramref name="concurrency"/> are claimed ahead; 0 turns claiming ahead off.</param>
    /// <param name="resized">Told each new <see cref="Budget"/>, in the order they are decided (under this object's lock).</param>
    /// <param name="fixedAhead">Claims this many ahead from the start, whatever claims and runs take (tests); null: as estimated.</param>
    public ClaimAhead(int concurrency, double factor, Action<int> resized, int? fixedAhead = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(factor);
        _concurrency = concurrency;
        _max = fixedAhead is null ? Most(concurrency, factor) : 0;
        _resized = resized;
        if (fixedAhead is > 0)
        {
            Ahead = fixedAhead.Value;
            _resized(Budget);
        }
    }

    /// <summary>The most commands claimed ahead: <paramref name="factor"/> × <paramref name="concurrency"/>, rounded down, at most 4 × it.</summary>
    public static int Most(int concurrency, double factor) => (int)Math.Min(concurrency * factor, 4.0 * concurrency);

    /// <summary>Commands claimed ahead of free slots now.</summary>
    public int Ahead { get; private set; }

    /// <summary>Commands a worker may hold before their effect has run: its slots and those claimed ahead.</summary>
    public int Budget => _concurrency + Ahead;

    /// <summary>A claim took <paramref name="took"/>.</summary>
    public void Claimed(TimeSpan took)
    {
        lock (_gate)
        {
            _claimMs = Average(_claimMs, took.TotalMilliseconds);
        }
    }

    /// <summary>An effect ran for <paramref name="took"/>.</summary>
    public void Ran(TimeSpan took)
    {
        lock (_gate)
        {
            _runMs = Average(_runMs, took.TotalMilliseconds);
            if (_max == 0 || _claimMs < 0)
            {
                return;
            }
            // A run under a microsecond counts as one: the cap decides then.
            var ahead = (int)Math.Min(_max, Math.Floor(_concurrency * _claimMs / Math.Max(_runMs, 0.001)));
            if (ahead != Ahead)
            {
                Ahead = ahead;
                _resized(Budget);
            }
        }
    }

    private static double Average(double average, double sample) =>
        average < 0 ? sample : average + (Weight * (sample - average));
}
