using NATS.Client.JetStream;

namespace Runner.Bench;

/// <summary>Pipelined JetStream publishing: up to a window of publishes in flight, PubAcks awaited in order.</summary>
internal static class Publisher
{
    /// <summary>Publishes <paramref name="count"/> messages; returns how many got no successful PubAck.</summary>
    public static async Task<int> PipelinedAsync(
        INatsJSContext js,
        int count,
        int window,
        Func<int, (string Subject, byte[] Data)> make,
        Action<int>? acked,
        CancellationToken cancellationToken)
    {
        var inFlight = new Queue<(int N, NatsJSPublishConcurrentFuture Future)>(Math.Min(window, count));
        var errors = 0;
        for (var i = 0; i < count; i++)
        {
            if (inFlight.Count >= window)
            {
                errors += await CompleteAsync(inFlight.Dequeue(), acked, cancellationToken);
            }
            var (subject, data) = make(i);
            var future = await js.PublishConcurrentAsync(subject, data, cancellationToken: cancellationToken);
            inFlight.Enqueue((i, future));
        }
        while (inFlight.Count > 0)
        {
            errors += await CompleteAsync(inFlight.Dequeue(), acked, cancellationToken);
        }
        return errors;
    }

    public static async Task<int> CompleteAsync((int N, NatsJSPublishConcurrentFuture Future) item, Action<int>? acked, CancellationToken cancellationToken)
    {
        var (n, future) = item;
        try
        {
            var ack = await future.GetResponseAsync(cancellationToken);
            if (ack.Error is not null || ack.Seq == 0)
            {
                return 1;
            }
            acked?.Invoke(n);
            return 0;
        }
        catch (NATS.Client.Core.NatsException)
        {
            return 1;
        }
        catch (TimeoutException)
        {
            return 1;
        }
        finally
        {
            await future.DisposeAsync();
        }
    }
}
