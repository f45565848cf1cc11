using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace Runner.Messaging;

/// <summary>
/// Start-up calls to the JetStream API (streams, buckets, object stores) waited for while the
/// servers cannot answer yet: a cluster electing its leaders after a deploy or a server restart
/// answers nothing, or "temporarily unavailable", for a while. A process started beside it waits
/// (with back-off, logging each try) instead of exiting; anything else, and cancellation, ends it.
/// </summary>
internal static class StartupRetry
{
    public static async Task<T> RunAsync<T>(string what, Func<CancellationToken, Task<T>> call, ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(cancellationToken);
            }
            catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                MessagingLog.StartupWaiting(logger, what, attempt, backoff.TotalMilliseconds, ex.Message);
                await Task.Delay(backoff, time, cancellationToken);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5_000));
            }
        }
    }

    public static Task RunAsync(string what, Func<CancellationToken, Task> call, ILogger logger, TimeProvider time, CancellationToken cancellationToken) =>
        RunAsync(what, async ct =>
        {
            await call(ct);
            return true;
        }, logger, time, cancellationToken);

    /// <summary>
    /// The server did not answer, or said it cannot right now (no leader, no quorum). A JetStream
    /// publish nobody answered (the client's own retries used up on "no responders") is the same as
    /// a request nobody answered: at start-up, a stream just created, or being recreated by another
    /// replica starting beside this one, may not take its subjects yet.
    /// </summary>
    public static bool IsTransient(Exception ex) => ex switch
    {
        NatsJSApiNoResponseException or NatsNoReplyException or NatsNoRespondersException or NatsTimeoutException or NatsJSTimeoutException or TimeoutException
            or NatsJSPublishNoResponseException => true,
        NatsJSApiException api => api.Error.Code == 503,
        _ => false,
    };
}
