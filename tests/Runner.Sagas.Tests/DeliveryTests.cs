using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// A delivery's sequences, delivery count, time and stream read from its reply subject without the
/// client's per-message split: the same values as the client's <c>Metadata</c> for real deliveries,
/// redeliveries included, and nothing made up for a subject that is not a JetStream reply.
/// </summary>
public sealed class DeliveryTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Real_deliveries_and_redeliveries_read_as_the_client_reads_them()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stream = "DELIVERY_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        await js.CreateStreamAsync(new StreamConfig(stream, [stream.ToLowerInvariant() + ".>"]), cts.Token);
        for (var i = 0; i < 5; i++)
        {
            (await js.PublishAsync($"{stream.ToLowerInvariant()}.m", Encoding.UTF8.GetBytes($"m{i}"), cancellationToken: cts.Token)).EnsureSuccess();
        }
        var consumer = await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("reader") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);

        var seen = 0;
        // Each message twice: NAKed on its first delivery, so the second says it was delivered twice.
        await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 10, Expires = TimeSpan.FromSeconds(2) }, cancellationToken: cts.Token))
        {
            var client = msg.Metadata!.Value;
            var delivery = Delivery.Parse(msg.ReplyTo)!.Value;
            Assert.Equal(client.Sequence.Stream, delivery.StreamSequence);
            Assert.Equal(client.Sequence.Consumer, delivery.ConsumerSequence);
            Assert.Equal(client.NumDelivered, delivery.NumDelivered);
            Assert.Equal(client.Timestamp, delivery.Timestamp);
            Assert.Equal(TimeSpan.Zero, delivery.Timestamp.Offset);
            Assert.Equal(delivery, Delivery.Parse(msg.ReplyTo, out var streamName));
            Assert.Equal(client.Stream, streamName);
            Delivery.Parse(msg.ReplyTo, out var again);
            Assert.Same(streamName, again);
            if (delivery.NumDelivered == 1)
            {
                await msg.NakAsync(cancellationToken: cts.Token);
            }
            else
            {
                await msg.AckAsync(cancellationToken: cts.Token);
            }
            seen++;
        }
        Assert.Equal(10, seen);
    }

    [Theory]
    [InlineData("$JS.ACK.ORDERS.reader.3.1042.77.1733380000123456789.12", 1042UL, 77UL, 3UL, 1733380000123L, "ORDERS")]
    [InlineData("$JS.ACK._.ACCHASH.ORDERS.reader.1.9.8.1733380000999999999.0.r4nd0m", 9UL, 8UL, 1UL, 1733380000999L, "ORDERS")]
    [InlineData("$JS.ACK.hub.ACCHASH.ORDERS.reader.2.18446744073709551615.1.0.0", 18446744073709551615UL, 1UL, 2UL, 0L, "ORDERS")]
    [InlineData("$JS.ACK.hub.ACCHASH.ORDERS.reader.2.5.1.1000000.0.token.and.more", 5UL, 1UL, 2UL, 1L, "ORDERS")]
    public void Both_forms_of_the_reply_subject_give_the_same_fields(string reply, ulong streamSequence, ulong consumerSequence, ulong delivered, long milliseconds, string stream)
    {
        var delivery = Delivery.Parse(reply)!.Value;
        Assert.Equal(streamSequence, delivery.StreamSequence);
        Assert.Equal(consumerSequence, delivery.ConsumerSequence);
        Assert.Equal(delivered, delivery.NumDelivered);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(milliseconds), delivery.Timestamp);
        Assert.Equal(delivery, Delivery.Parse(reply, out var name));
        Assert.Equal(stream, name);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("_INBOX.abc.def")]
    [InlineData("$JS.ACK.ORDERS.reader.3.1042.77.1733380000123456789")]
    [InlineData("$JS.ACK.ORDERS.reader.3.1042.77.1733380000123456789.12.x")]
    [InlineData("$JS.ACK.ORDERS.reader.3.-1042.77.1733380000123456789.12")]
    [InlineData("$JS.ACK.ORDERS.reader.three.1042.77.1733380000123456789.12")]
    [InlineData("$JS.ACK.ORDERS.reader.3. 1042.77.1733380000123456789.12")]
    [InlineData("$JS.NAK.ORDERS.reader.3.1042.77.1733380000123456789.12")]
    public void A_subject_that_is_not_a_JetStream_reply_has_no_delivery_and_names_no_stream(string? reply)
    {
        Assert.Null(Delivery.Parse(reply));
        Assert.Null(Delivery.Parse(reply, out var stream));
        Assert.Null(stream);
    }
}
