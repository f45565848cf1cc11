using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// The batcher's stall watch, on a real server. A consumer that delivers nothing while its stream
/// holds more is made here by an unacked message at a max-ack-pending of one: the server then
/// withholds everything after it until the ack wait (a minute) runs out, as a consumer that lost a
/// pull in a leader change withholds until something wakes it.
/// </summary>
public sealed class ConsumerStallTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_consumer_that_delivers_nothing_while_its_stream_holds_more_is_reattached()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js, messages: 3);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var batcher = new MessageBatcher(js, stream, Withholding(subject), _ => ValueTask.FromResult(1UL), 10,
            NullLogger.Instance, TimeProvider.System, cts.Token, stallAfter: StallAfter);

        var first = await batcher.ReadBatchAsync(10, cts.Token);
        Assert.Equal([1UL], first.Select(m => Delivery.Of(m)!.Value.StreamSequence));

        // Not acked: the server withholds 2 and 3 for the ack wait, far beyond this read's limit.
        using var read = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        read.CancelAfter(TimeSpan.FromSeconds(10));
        var again = await batcher.ReadBatchAsync(10, read.Token);

        // Re-attached from the start sequence the caller gives: message 1 comes again, in order.
        Assert.Equal(1UL, Delivery.Of(again[0])!.Value.StreamSequence);
        Assert.Equal(1, batcher.Stalls);
        Assert.Equal(2, batcher.Attaches);
    }

    [Fact]
    public async Task A_consumer_with_nothing_more_in_its_stream_is_left_alone()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js, messages: 1);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var batcher = new MessageBatcher(js, stream, Withholding(subject), _ => ValueTask.FromResult(1UL), 10,
            NullLogger.Instance, TimeProvider.System, cts.Token, stallAfter: StallAfter);

        var first = await batcher.ReadBatchAsync(10, cts.Token);
        Assert.Single(first);
        await first[0].AckAsync(cts.Token);

        // Waiting on an idle stream, for four stall times: quiet is not a stall.
        using var read = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        read.CancelAfter(StallAfter * 4);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await batcher.ReadBatchAsync(10, read.Token));
        Assert.Equal(0, batcher.Stalls);
        Assert.Equal(1, batcher.Attaches);

        // Something new arrives (after the other subject's message at 2): delivered by the same attachment.
        await js.PublishAsync(subject, new byte[] { 2 }, cancellationToken: cts.Token);
        var next = await batcher.ReadBatchAsync(10, cts.Token);
        Assert.Equal(3UL, Delivery.Of(next[0])!.Value.StreamSequence);
        Assert.Equal(1, batcher.Attaches);
    }

    [Fact]
    public async Task A_reader_busy_with_a_full_buffer_is_not_a_stall()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js, messages: 40);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var config = new ConsumerConfig("busy") { FilterSubject = subject, AckPolicy = ConsumerConfigAckPolicy.All, MaxDeliver = -1 };
        await using var batcher = new MessageBatcher(js, stream, config, _ => ValueTask.FromResult(1UL), 5,
            NullLogger.Instance, TimeProvider.System, cts.Token, stallAfter: StallAfter);

        // The reader takes one batch, then is busy for three stall times while the buffer is full
        // and the server holds the rest: the batcher must not mistake that for a stall.
        var first = await batcher.ReadBatchAsync(5, cts.Token);
        await Task.Delay(StallAfter * 3, cts.Token);
        var seen = first.Select(m => Delivery.Of(m)!.Value.StreamSequence).ToList();
        while (seen.Count < 40)
        {
            seen.AddRange((await batcher.ReadBatchAsync(5, cts.Token)).Select(m => Delivery.Of(m)!.Value.StreamSequence));
        }
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (ulong)i), seen);
        Assert.Equal(0, batcher.Stalls);
    }

    /// <summary>
    /// Each attach deletes the consumer and makes it again under the same name. A message read before a re-attach and
    /// acked after it must not reach the new consumer: where it acks all (a partition's), the old delivery's ack would
    /// acknowledge every message up to it there, delivered again or not, and raise the floor of delivery sequences it
    /// takes acks above, so that its own acks of what it delivers again were ignored (redelivered after the ack wait,
    /// or the consumer stalled at its limit of pending acks). Such acks are dropped.
    /// </summary>
    [Fact]
    public async Task An_ack_from_an_attachment_that_ended_does_not_reach_the_consumer_made_again()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js, messages: 5);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var config = new ConsumerConfig("again") { FilterSubject = subject, AckPolicy = ConsumerConfigAckPolicy.All, MaxDeliver = -1 };
        await using var batcher = new MessageBatcher(js, stream, config, _ => ValueTask.FromResult(1UL), 10,
            NullLogger.Instance, TimeProvider.System, cts.Token);
        var old = await batcher.ReadBatchAsync(10, cts.Token);
        while (old.Count < 5)
        {
            old.AddRange(await batcher.ReadBatchAsync(10, cts.Token));
        }

        batcher.Restart();
        var again = await batcher.ReadBatchAsync(10, cts.Token);
        Assert.Equal(1UL, Delivery.Of(again[0])!.Value.StreamSequence);
        Assert.Equal(2, batcher.Attaches);

        // The old delivery of 5, then the new delivery of 1, acked in that order on one connection: once the second
        // shows, the first would have too.
        await old[4].AckAsync(cts.Token);
        await again[0].AckAsync(cts.Token);
        ConsumerInfo info;
        while ((info = (await js.GetConsumerAsync(stream, "again", cts.Token)).Info).AckFloor.StreamSeq == 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), cts.Token);
        }
        Assert.Equal(1UL, info.AckFloor.StreamSeq);
    }

    private static ConsumerConfig Withholding(string subject) => new("withholding")
    {
        FilterSubject = subject,
        AckPolicy = ConsumerConfigAckPolicy.Explicit,
        AckWait = TimeSpan.FromMinutes(1),
        MaxAckPending = 1,
        MaxDeliver = -1,
    };

    private static async Task<(string Stream, string Subject)> CreateStreamAsync(NatsJSContext js, int messages)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var stream = $"STALL_{id}";
        var subject = $"stall.{id}.one";
        await js.CreateStreamAsync(new StreamConfig(stream, [$"stall.{id}.>"]));
        // Another subject in the same stream, after ours: the watch must look at the filter, not the stream.
        for (var i = 1; i <= messages; i++)
        {
            await js.PublishAsync(subject, new byte[] { (byte)i });
        }
        await js.PublishAsync($"stall.{id}.other", new byte[] { 0 });
        return (stream, subject);
    }
}
