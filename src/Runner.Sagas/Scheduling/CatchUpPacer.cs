namespace Runner.Sagas.Scheduling;

/// <summary>
/// Spreads the backlog — the schedules already overdue when a scheduler starts, typically those
/// that came due while the replica was down — evenly over the catch-up window, in due order: the
/// i-th of n overdue items may fire once i/n of the window has passed. Without it a restart after
/// a long outage would publish every overdue timer of every partition at once, and the sagas
/// would get all their timer transitions in one storm. Timers that come due after the start are
/// not paced; they queue behind the backlog, which is why the window is short (2 s by default).
/// </summary>
internal sealed class CatchUpPacer
{
    private readonly long _backlog;
    private readonly TimeSpan _window;
    private long _released;
    private bool _done;

    public CatchUpPacer(long backlog, TimeSpan window)
    {
        _backlog = backlog;
        _window = window;
        _done = backlog <= 0 || window <= TimeSpan.Zero;
    }

    public bool Active => !_done;

    /// <summary>How many more backlog items may fire now, <paramref name="elapsed"/> after the start.</summary>
    public long Allowance(TimeSpan elapsed)
    {
        if (_done || elapsed >= _window)
        {
            _done = true;
            return long.MaxValue;
        }
        var releasable = Math.Min(_backlog, (long)Math.Floor(_backlog * (elapsed / _window)) + 1);
        return Math.Max(0, releasable - _released);
    }

    /// <summary>How long from <paramref name="elapsed"/> until the next backlog item may fire.</summary>
    public TimeSpan UntilNext(TimeSpan elapsed) => _window * ((double)_released / _backlog) - elapsed;

    public void Released(long count)
    {
        _released += count;
        _done |= _released >= _backlog;
    }

    /// <summary>The backlog is gone (fired, or cancelled by transitions): stop pacing.</summary>
    public void Finish() => _done = true;
}
