using System.Threading.Channels;

namespace Runner.Sagas.Scheduling;

/// <summary>
/// A partition worker's nudge to its scheduler: a transition just committed a new schedule, which
/// may be due sooner than the scheduler's next wake-up. Pulses coalesce, and a pulse sent while
/// the scheduler is busy is kept, so none is lost between a scan and the next wait.
/// </summary>
internal sealed class ScheduleSignal
{
    private readonly Channel<bool> _pulses = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    public void Pulse() => _pulses.Writer.TryWrite(true);

    /// <summary>Completes at the next pulse (or at once if one is pending), consuming it.</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        await _pulses.Reader.WaitToReadAsync(cancellationToken);
        _pulses.Reader.TryRead(out _);
    }
}
