using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The pull subscription the batcher reads through, on a real server: what it delivers, how much it asks for, and how it carries on.</summary>
public sealed class PullConsumerTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Delivers_every_message_in_order_with_its_headers_and_body_and_takes_acks()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (stream, subject) = await CreateStreamAsync(js, cts.Token);
        for (var i = 1; i <= 25; i++)
        {
            var headers = new NatsHeaders
            {
                ["tenant-id"] = "acme",
                ["n"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["twice"] = new Microsoft.Extensions.Primitives.StringValues(["first", "second"]),
            };
            (await js.PublishAsync(subject, Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"), headers: headers, cancellationToken: cts.Token)).EnsureSuccess();
        }
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("reader") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);

        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "reader", 4, TimeSpan.FromSeconds(30), Heartbeat, TimeProvider.System, cts.Token);
        var read = new List<JetStreamMessage>();
        await foreach (var msg in pull.ReadAllAsync(cts.Token))
        {
            read.Add(msg);
            await msg.AckAsync(cts.Token);
            if (read.Count == 25)
            {
                break;
            }
        }

        Assert.Equal(Enumerable.Range(1, 25).Select(i => (ulong)i), read.Select(m => Delivery.Of(m)!.Value.StreamSequence));
        for (var i = 1; i <= 25; i++)
        {
            var msg = read[i - 1];
            Assert.Equal(subject, msg.Subject);
            Assert.Equal($"{{\"n\":{i}}}", Encoding.UTF8.GetString(msg.Data));
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), msg.Headers["n"]);
            Assert.Equal("acme", msg.Headers["Tenant-Id"]);
            Assert.Equal("first", msg.Headers["twice"]);
        }
        // Four at most beyond what was read, asked for once half of that is free: a pull per two messages, not one each.
        Assert.InRange(pull.Pulls, 25 / 4, 25 / 2 + 1);
        await SagaHarness.WaitUntilAsync(async () => (await js.GetConsumerAsync(stream, "reader", cts.Token)).Info.AckFloor.StreamSeq == 25,
            TimeSpan.FromSeconds(20), "every ack to reach the server");
    }

    [Fact]
    public async Task Asks_for_no_more_than_its_room_beyond_what_was_read()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stream = await FilledAsync(js, "room", 20, cts.Token);

        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "room", 6, TimeSpan.FromSeconds(30), Heartbeat, TimeProvider.System, cts.Token);
        await WaitDeliveredAsync(js, stream, "room", 6, cts.Token);
        await Task.Delay(300, cts.Token);
        Assert.Equal(6UL, await DeliveredAsync(js, stream, "room", cts.Token));

        await using var reader = pull.ReadAllAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        // Two read: a third of the room is free, less than half; nothing more is asked for.
        Assert.True(await reader.MoveNextAsync());
        Assert.True(await reader.MoveNextAsync());
        await Task.Delay(300, cts.Token);
        Assert.Equal(6UL, await DeliveredAsync(js, stream, "room", cts.Token));
        Assert.Equal(1, pull.Pulls);

        // A third read frees half the room: one pull asks for all three.
        Assert.True(await reader.MoveNextAsync());
        await WaitDeliveredAsync(js, stream, "room", 9, cts.Token);
        await Task.Delay(300, cts.Token);
        Assert.Equal(9UL, await DeliveredAsync(js, stream, "room", cts.Token));
        Assert.Equal(2, pull.Pulls);
    }

    [Fact]
    public async Task A_resized_pull_asks_for_more_room_at_once_and_for_less_as_messages_are_given_back()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stream = await FilledAsync(js, "resized", 20, cts.Token);

        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "resized", 2, TimeSpan.FromSeconds(30), Heartbeat, TimeProvider.System,
            cts.Token, releaseOnRead: false);
        await using var reader = pull.ReadAllAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await reader.MoveNextAsync());
        Assert.True(await reader.MoveNextAsync());
        await Task.Delay(300, cts.Token);
        Assert.Equal(2UL, await DeliveredAsync(js, stream, "resized", cts.Token));

        // Grown by three while both are held: three more come without any given back.
        pull.Resize(5);
        await WaitDeliveredAsync(js, stream, "resized", 5, cts.Token);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(await reader.MoveNextAsync());
        }
        await Task.Delay(300, cts.Token);
        Assert.Equal(5UL, await DeliveredAsync(js, stream, "resized", cts.Token));

        // Shrunk to one while five are held: giving back four leaves one held, so still nothing more comes.
        pull.Resize(1);
        for (var i = 0; i < 4; i++)
        {
            pull.Release();
        }
        await Task.Delay(300, cts.Token);
        Assert.Equal(5UL, await DeliveredAsync(js, stream, "resized", cts.Token));
        // The fifth given back: room for one.
        pull.Release();
        await WaitDeliveredAsync(js, stream, "resized", 6, cts.Token);
        Assert.True(await reader.MoveNextAsync());
        await Task.Delay(300, cts.Token);
        Assert.Equal(6UL, await DeliveredAsync(js, stream, "resized", cts.Token));
    }

    [Fact]
    public async Task A_pull_that_gives_room_back_on_read_cannot_be_resized()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (stream, _) = await CreateStreamAsync(js, cts.Token);
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("fixed") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);
        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "fixed", 4, TimeSpan.FromSeconds(30), Heartbeat, TimeProvider.System, cts.Token);

        Assert.Throws<InvalidOperationException>(() => pull.Resize(8));
        Assert.Throws<ArgumentOutOfRangeException>(() => pull.Resize(0));
    }

    [Fact]
    public async Task A_pull_that_expires_is_asked_again()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (stream, subject) = await CreateStreamAsync(js, cts.Token);
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("expiring") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);

        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "expiring", 10, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(250), TimeProvider.System, cts.Token);
        // Two pulls expire with nothing to deliver; each is followed by another.
        await SagaHarness.WaitUntilAsync(() => pull.Pulls >= 3, TimeSpan.FromSeconds(20), "pulls after the first two expired");
        (await js.PublishAsync(subject, new byte[] { 7 }, cancellationToken: cts.Token)).EnsureSuccess();

        await using var reader = pull.ReadAllAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await reader.MoveNextAsync());
        Assert.Equal([7], reader.Current.Data);
    }

    [Fact]
    public async Task A_deleted_consumer_ends_its_messages_with_the_servers_reason()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (stream, _) = await CreateStreamAsync(js, cts.Token);
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("doomed") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);
        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "doomed", 10, TimeSpan.FromSeconds(30), Heartbeat, TimeProvider.System, cts.Token);
        await SagaHarness.WaitUntilAsync(async () => (await js.GetConsumerAsync(stream, "doomed", cts.Token)).Info.NumWaiting == 1, TimeSpan.FromSeconds(20), "the pull to wait at the server");

        await js.DeleteConsumerAsync(stream, "doomed", cts.Token);

        var error = await Assert.ThrowsAsync<NatsException>(async () =>
        {
            await foreach (var _ in pull.ReadAllAsync(cts.Token))
            {
            }
        });
        Assert.Contains("409 Consumer Deleted", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pulls_lost_with_a_server_restart_are_asked_again_on_reconnect()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var (stream, subject) = await CreateStreamAsync(js, cts.Token);
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("survivor") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);
        // Heartbeats far apart: only the reconnect can explain a pull within the time waited below.
        var heartbeat = TimeSpan.FromSeconds(20);
        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "survivor", 10, TimeSpan.FromSeconds(60), heartbeat, TimeProvider.System, cts.Token);
        await SagaHarness.WaitUntilAsync(async () => (await js.GetConsumerAsync(stream, "survivor", cts.Token)).Info.NumWaiting == 1, TimeSpan.FromSeconds(20), "the first pull to wait at the server");
        Assert.Equal(1, pull.Pulls);

        await nats.RestartAsync(TimeSpan.FromMilliseconds(500), cts.Token);
        await SagaHarness.WaitUntilAsync(() => connection.ConnectionState == NatsConnectionState.Open && pull.Pulls >= 2, heartbeat, "a pull once the connection opened again");
        await SagaHarness.WaitUntilAsync(async () => (await js.GetConsumerAsync(stream, "survivor", cts.Token)).Info.NumWaiting >= 1, TimeSpan.FromSeconds(20), "the pull to wait at the restarted server");
        // One pull out, not one from before the restart and another after it.
        await Task.Delay(300, cts.Token);
        Assert.Equal(1, (await js.GetConsumerAsync(stream, "survivor", cts.Token)).Info.NumWaiting);
        (await js.PublishAsync(subject, new byte[] { 9 }, cancellationToken: cts.Token)).EnsureSuccess();

        await using var reader = pull.ReadAllAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await reader.MoveNextAsync());
        Assert.Equal([9], reader.Current.Data);
    }

    [Fact]
    public async Task A_pull_nobody_answers_is_taken_as_lost_after_two_silent_heartbeats_and_asked_again()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (stream, subject) = await CreateStreamAsync(js, cts.Token);

        // No such consumer yet: the server drops its pulls without a word, not even a heartbeat.
        await using var pull = await PullConsumer.StartAsync(connection, js.Opts.Prefix, stream, "late", 10, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(300), TimeProvider.System, cts.Token);
        await SagaHarness.WaitUntilAsync(() => pull.Pulls >= 3, TimeSpan.FromSeconds(20), "pulls asked again after silence");
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("late") { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);
        (await js.PublishAsync(subject, new byte[] { 5 }, cancellationToken: cts.Token)).EnsureSuccess();

        await using var reader = pull.ReadAllAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await reader.MoveNextAsync());
        Assert.Equal([5], reader.Current.Data);
    }

    private static async Task<ulong> DeliveredAsync(NatsJSContext js, string stream, string consumer, CancellationToken cancellationToken) =>
        (await js.GetConsumerAsync(stream, consumer, cancellationToken)).Info.Delivered.ConsumerSeq;

    private static Task WaitDeliveredAsync(NatsJSContext js, string stream, string consumer, ulong count, CancellationToken cancellationToken) =>
        SagaHarness.WaitUntilAsync(async () => await DeliveredAsync(js, stream, consumer, cancellationToken) >= count, TimeSpan.FromSeconds(20), $"{count} delivered");

    /// <summary>A new stream holding <paramref name="count"/> one-byte messages (1, 2, …) and an explicit-ack consumer on it.</summary>
    private static async Task<string> FilledAsync(NatsJSContext js, string consumer, int count, CancellationToken cancellationToken)
    {
        var (stream, subject) = await CreateStreamAsync(js, cancellationToken);
        for (var i = 1; i <= count; i++)
        {
            (await js.PublishAsync(subject, new byte[] { (byte)i }, cancellationToken: cancellationToken)).EnsureSuccess();
        }
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cancellationToken);
        return stream;
    }

    private static async Task<(string Stream, string Subject)> CreateStreamAsync(NatsJSContext js, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var stream = $"PULL_{id}";
        await js.CreateStreamAsync(new StreamConfig(stream, [$"pull.{id}.>"]), cancellationToken);
        return (stream, $"pull.{id}.one");
    }
}
