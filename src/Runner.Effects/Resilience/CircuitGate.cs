using Polly.CircuitBreaker;

namespace Runner.Effects.Resilience;

/// <summary>
/// Where commands wait while the circuit of their (effect, upstream) is open: each holder wakes
/// when the circuit closes, or when the break is over and a probe may go through — whichever
/// comes first. Counts what it holds, for metrics and <c>/info</c>.
/// </summary>
internal sealed class CircuitGate(TimeProvider time)
{
    private static readonly TimeSpan s_shortest = TimeSpan.FromMilliseconds(10);

    private TaskCompletionSource _closed = NewSignal();
    private int _held;
    private long _opened;

    /// <summary>Commands waiting here now.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>How many times the circuit opened (first opening and each failed probe).</summary>
    public long Opened => Interlocked.Read(ref _opened);

    /// <summary>
    /// Completes at the next close. Taken before a call, so that a close between the refusal and
    /// the wait is not missed.
    /// </summary>
    public Task NextClose => Volatile.Read(ref _closed).Task;

    public void OnOpened() => Interlocked.Increment(ref _opened);

    public void OnClosed() => Interlocked.Exchange(ref _closed, NewSignal()).TrySetResult();

    /// <summary>
    /// Waits until <paramref name="nextClose"/> completes or <paramref name="retryAfter"/> (the rest
    /// of the break, as the refusal said; <paramref name="breakDuration"/> when it did not) passes.
    /// </summary>
    public async Task WaitAsync(Task nextClose, BrokenCircuitException refusal, TimeSpan breakDuration, CancellationToken cancellationToken)
    {
        var wait = refusal.RetryAfter is { } after ? TimeSpan.FromTicks(Math.Clamp(after.Ticks, s_shortest.Ticks, breakDuration.Ticks)) : breakDuration;
        // The timer is set before the command counts as held: whoever sees it held may move the clock.
        var waiting = nextClose.WaitAsync(wait, time, cancellationToken);
        Interlocked.Increment(ref _held);
        try
        {
            await waiting;
        }
        catch (TimeoutException)
        {
            // The break is over: the next call may be the probe.
        }
        finally
        {
            Interlocked.Decrement(ref _held);
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
