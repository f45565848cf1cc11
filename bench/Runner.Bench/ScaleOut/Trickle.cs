using System.Diagnostics;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace Runner.Bench.ScaleOut;

/// <summary>
/// A light steady load while partitions move (events/s over the phase's keys), so that a hand-over
/// has a batch in hand and an outbox to flush, and a new owner's first commit shows when it serves.
/// </summary>
internal sealed class Trickle : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly Task _loop;
    private int _sent;
    private int _errors;

    private Trickle(INatsJSContext js, int rate, int keys, int phase, CancellationToken cancellationToken)
    {
        Rate = rate;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _loop = Task.Run(() => RunAsync(js, keys, phase, _stop.Token), CancellationToken.None);
    }

    public int Rate { get; }

    public int Sent => Volatile.Read(ref _sent);

    public int Errors => Volatile.Read(ref _errors);

    public static Trickle Start(INatsJSContext js, int rate, int keys, int phase, CancellationToken cancellationToken) =>
        new(js, rate, keys, phase, cancellationToken);

    private async Task RunAsync(INatsJSContext js, int keys, int phase, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var due = (int)(Stopwatch.GetElapsedTime(started).TotalSeconds * Rate);
                while (_sent < due && !cancellationToken.IsCancellationRequested)
                {
                    var n = _sent;
                    try
                    {
                        var ack = await js.PublishAsync(Wire.Subject(n % keys), Wire.Event(phase, n, 0), cancellationToken: cancellationToken);
                        if (ack.Error is not null)
                        {
                            Interlocked.Increment(ref _errors);
                        }
                    }
                    catch (Exception ex) when (ex is NatsException or TimeoutException)
                    {
                        Interlocked.Increment(ref _errors);
                    }
                    Interlocked.Increment(ref _sent);
                }
                await Task.Delay(5, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
