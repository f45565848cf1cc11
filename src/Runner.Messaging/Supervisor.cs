using Microsoft.Extensions.Logging;

namespace Runner.Messaging;

/// <summary>
/// Runs a background loop until cancellation: any other failure is logged and the loop restarts
/// with exponential back-off (200 ms to 10 s, back to 200 ms after a minute of good running), so
/// no loop can take the process down.
/// </summary>
internal static class Supervisor
{
    public static Task Run(string name, Func<CancellationToken, Task> loop, ILogger logger, TimeProvider time, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            var backoff = TimeSpan.FromMilliseconds(200);
            while (!cancellationToken.IsCancellationRequested)
            {
                var started = time.GetTimestamp();
                try
                {
                    await loop(cancellationToken);
                    return;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // A supervised loop must survive any failure; it is logged and restarted.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    if (time.GetElapsedTime(started) > TimeSpan.FromMinutes(1))
                    {
                        // It ran well for a while: this failure is new, not the same one again.
                        backoff = TimeSpan.FromMilliseconds(200);
                    }
                    MessagingLog.LoopFailed(logger, ex, name, backoff.TotalMilliseconds);
                    try
                    {
                        await Task.Delay(backoff, time, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 10_000));
                }
            }
        }, CancellationToken.None);
}
