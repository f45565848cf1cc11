using System.Text.Json;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;

namespace Runner.Bench.Floor;

/// <summary>
/// The pieces of a "traffic alone" run: Runner's JetStream hops made by Runner's own transport (its
/// batcher and pull consumers, its PubAck pipeline) with nothing between them, so that what Runner
/// does can be read as a share of what the machine and server allow for its traffic.
/// </summary>
internal static class TrafficFloor
{
    /// <summary>
    /// A router's or partition's loop, as Runner's make it: a batch of what is buffered, each
    /// message's publish (if any) in flight together, their PubAcks awaited, one ack for the batch
    /// (the consumer acks all), on a consumer of the stream's <paramref name="settings"/>. Ends when <paramref name="cancellationToken"/> does, and deletes its consumer.
    /// </summary>
    public static async Task ForwardAsync(INatsJSContext js, PubAckPipeline pipeline, JetStreamSettings settings, string stream, string consumer, string filter,
        int batch, ILogger logger, Func<JetStreamMessage, (string Subject, byte[] Data, string MsgId)?> forward, CancellationToken cancellationToken)
    {
        var template = new ConsumerConfig(consumer)
        {
            FilterSubject = filter,
            AckPolicy = ConsumerConfigAckPolicy.All,
            AckWait = settings.AckWait,
            MaxAckPending = settings.MaxAckPending,
        };
        await using (var batcher = new MessageBatcher(js, stream, template, _ => ValueTask.FromResult(0UL), batch, logger, TimeProvider.System, cancellationToken))
        {
            var pending = new List<PendingPubAck>(batch);
            try
            {
                while (!cancellationToken.IsCancellationRequested)
                {
                    var messages = await batcher.ReadBatchAsync(batch, cancellationToken);
                    pending.Clear();
                    foreach (var msg in messages)
                    {
                        if (forward(msg) is { } next)
                        {
                            pending.Add(await pipeline.PublishAsync(next.Subject, next.Data, next.MsgId, null, cancellationToken));
                        }
                    }
                    foreach (var ack in pending)
                    {
                        var response = await ack.GetResponseAsync(cancellationToken);
                        if (response.Error is { } error)
                        {
                            throw new NatsJSApiException(error);
                        }
                    }
                    await messages[^1].AckAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // stopped
            }
        }
        await js.DeleteConsumerAsync(stream, consumer, CancellationToken.None);
    }

    /// <summary>The first string property named <paramref name="property"/> of a JSON body, at any depth.</summary>
    public static string StringProperty(byte[] data, string property)
    {
        var reader = new Utf8JsonReader(data);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(property))
            {
                return reader.Read() ? reader.GetString() ?? string.Empty : string.Empty;
            }
        }
        throw new InvalidOperationException($"a body without its '{property}'");
    }
}
