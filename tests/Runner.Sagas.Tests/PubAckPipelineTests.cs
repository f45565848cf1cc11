using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// The shared PubAck pipeline the router and the outbox relay publish through, on a real server:
/// many PubAcks outstanding at once over one reply subscription, messages stored in the order they
/// were sent, duplicates and refusals reported as the server answered them.
/// </summary>
public sealed class PubAckPipelineTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Many_outstanding_publishes_are_stored_in_the_order_sent_and_each_gets_its_own_ack()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);
        Assert.Same(pipeline, PubAckPipeline.For(connection));

        const int Count = 2_000;
        var pending = new List<PendingPubAck>(Count);
        for (var i = 0; i < Count; i++)
        {
            pending.Add(await pipeline.PublishAsync($"{subject}.{i % 7}", Encoding.UTF8.GetBytes($"m{i}"), $"id-{i}", null, cts.Token));
        }
        var sequences = new List<ulong>(Count);
        foreach (var ack in pending)
        {
            var response = await ack.GetResponseAsync(cts.Token);
            Assert.Null(response.Error);
            Assert.Equal(stream, response.Stream);
            Assert.False(response.Duplicate);
            sequences.Add(response.Seq);
        }
        Assert.Equal(Enumerable.Range(1, Count).Select(i => (ulong)i), sequences);
        Assert.Equal(0, pipeline.Outstanding);

        // Stored in the order sent: message i at sequence i + 1.
        var stored = await js.GetStreamAsync(stream, cancellationToken: cts.Token);
        for (var i = 0; i < Count; i += 397)
        {
            var msg = await stored.GetAsync(new StreamMsgGetRequest { Seq = (ulong)i + 1 }, cts.Token);
            Assert.Equal($"m{i}", Encoding.UTF8.GetString(msg.Message.Data.Span));
        }
    }

    /// <summary>
    /// The router asks whether a publish's PubAck is in before it decides to wait for it: a publish to a subject no
    /// stream takes is answered at once (no responders), and one to a stream once the server has stored it; either
    /// way the answer, once in, is read without waiting and says what the server said.
    /// </summary>
    [Fact]
    public async Task A_publish_says_when_its_PubAck_is_in_and_reading_it_then_gives_what_the_server_answered()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);

        var stored = await pipeline.PublishAsync($"{subject}.a", "m"u8.ToArray(), "in-1", null, cts.Token);
        var nowhere = await pipeline.PublishAsync("no.stream." + Guid.NewGuid().ToString("N"), "m"u8.ToArray(), "in-2", null, cts.Token);
        await SagaHarness.WaitUntilAsync(() => stored.IsCompleted && nowhere.IsCompleted, TimeSpan.FromSeconds(20), "both PubAcks in");

        var reading = stored.GetResponseAsync(cts.Token);
        Assert.True(reading.IsCompleted);
        var ack = await reading;
        Assert.Equal(stream, ack.Stream);
        Assert.Equal(1UL, ack.Seq);
        await Assert.ThrowsAsync<NatsNoRespondersException>(async () => await nowhere.GetResponseAsync(cts.Token));
        Assert.Equal(0, pipeline.Outstanding);
    }

    [Fact]
    public async Task Publishes_racing_the_first_one_on_a_connection_each_get_their_PubAck()
    {
        // The reply subscription is made by the first publish; those that start while it is being
        // made must not go out before it, or their PubAcks would go to no one.
        for (var round = 0; round < 5; round++)
        {
            await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, RequestTimeout = TimeSpan.FromSeconds(3) });
            await connection.ConnectAsync();
            var js = new NatsJSContext(connection);
            var (_, subject) = await CreateStreamAsync(js);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var pipeline = PubAckPipeline.For(connection);
            using var go = new ManualResetEventSlim();
            var publishes = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
            {
                go.Wait(cts.Token);
                var pending = await pipeline.PublishAsync($"{subject}.{i}", new byte[] { (byte)i }, $"race-{round}-{i}", null, cts.Token);
                return await pending.GetResponseAsync(cts.Token);
            })).ToList();
            go.Set();

            var acks = await Task.WhenAll(publishes);

            Assert.All(acks, ack => Assert.Null(ack.Error));
            Assert.Equal(Enumerable.Range(1, 64).Select(i => (ulong)i), acks.Select(a => a.Seq).Order());
        }
    }

    [Fact]
    public async Task A_wait_reused_after_a_cancelled_one_gets_only_its_own_PubAck()
    {
        // Waits are reused once read. One given up on (its PubAck still to come) must never pass that
        // PubAck to the publish that reuses it: every ack below names its own message.
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (stream, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var givenUp = 0;
        var loops = Enumerable.Range(0, 4).Select(loop => Task.Run(async () =>
        {
            var acked = new List<(ulong Seq, string Body)>();
            for (var i = 0; i < 300; i++)
            {
                var body = $"{loop}-{i}";
                var pending = await pipeline.PublishAsync($"{subject}.{loop}", Encoding.UTF8.GetBytes(body), $"reuse-{body}", null, cts.Token);
                PubAckResponse ack;
                if (i % 3 == 0)
                {
                    // Given up on at once; a PubAck that came first is the wait's result instead, and must be its own.
                    try
                    {
                        ack = await pending.GetResponseAsync(cancelled.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        Interlocked.Increment(ref givenUp);
                        continue;
                    }
                }
                else
                {
                    ack = await pending.GetResponseAsync(cts.Token);
                }
                Assert.Null(ack.Error);
                Assert.False(ack.Duplicate);
                acked.Add((ack.Seq, body));
            }
            return acked;
        })).ToList();
        var all = (await Task.WhenAll(loops)).SelectMany(x => x).ToList();

        Assert.True(givenUp > 0, "no wait was given up on before its PubAck came");
        Assert.Equal(4 * 300 - givenUp, all.Count);
        Assert.Equal(all.Count, all.Select(a => a.Seq).Distinct().Count());
        var stored = await js.GetStreamAsync(stream, cancellationToken: cts.Token);
        foreach (var (seq, body) in all)
        {
            var msg = await stored.GetAsync(new StreamMsgGetRequest { Seq = seq }, cts.Token);
            Assert.Equal(body, Encoding.UTF8.GetString(msg.Message.Data.Span));
        }
        Assert.Equal(0, pipeline.Outstanding);
    }

    [Fact]
    public async Task The_reply_subscription_outlives_garbage_collections()
    {
        // The client holds subscriptions weakly and unsubscribes one that is collected: the pipeline's
        // must stay as long as its connection, whoever else still references it.
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, RequestTimeout = TimeSpan.FromSeconds(5) });
        var js = new NatsJSContext(connection);
        var (_, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var first = await (await PubAckPipeline.For(connection).PublishAsync(subject + ".a", new byte[] { 1 }, "gc-1", null, cts.Token)).GetResponseAsync(cts.Token);
        Assert.Equal(1UL, first.Seq);

        for (var i = 0; i < 3; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }

        var second = await (await PubAckPipeline.For(connection).PublishAsync(subject + ".a", new byte[] { 2 }, "gc-2", null, cts.Token)).GetResponseAsync(cts.Token);
        Assert.Equal(2UL, second.Seq);
    }

    [Fact]
    public async Task A_repeated_msg_id_is_acked_as_a_duplicate_of_the_stored_message()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (_, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);

        var first = await (await pipeline.PublishAsync(subject + ".a", new byte[] { 1 }, "same", null, cts.Token)).GetResponseAsync(cts.Token);
        var again = await (await pipeline.PublishAsync(subject + ".a", new byte[] { 1 }, "same", null, cts.Token)).GetResponseAsync(cts.Token);

        Assert.False(first.Duplicate);
        Assert.True(again.Duplicate);
        Assert.Equal(first.Seq, again.Seq);
    }

    [Fact]
    public async Task A_refusal_and_a_subject_no_stream_takes_fail_that_publish_alone()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, RequestTimeout = TimeSpan.FromSeconds(5) });
        var js = new NatsJSContext(connection);
        var (_, subject) = await CreateStreamAsync(js, maxMsgSize: 64);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);

        var ok = await pipeline.PublishAsync(subject + ".a", new byte[] { 1 }, null, null, cts.Token);
        var tooLarge = await pipeline.PublishAsync(subject + ".a", new byte[1_000], null, null, cts.Token);
        var nowhere = await pipeline.PublishAsync("no.stream." + Guid.NewGuid().ToString("N"), new byte[] { 1 }, null, null, cts.Token);
        var okAfter = await pipeline.PublishAsync(subject + ".a", new byte[] { 2 }, null, null, cts.Token);

        Assert.Null((await ok.GetResponseAsync(cts.Token)).Error);
        var refused = await tooLarge.GetResponseAsync(cts.Token);
        Assert.Equal(PubAcks.MessageTooLarge, refused.Error?.ErrCode);
        Assert.Throws<NatsJSApiException>(refused.EnsureStored);
        await Assert.ThrowsAsync<NatsNoRespondersException>(() => nowhere.GetResponseAsync(cts.Token).AsTask());
        Assert.Null((await okAfter.GetResponseAsync(cts.Token)).Error);
        Assert.Equal(0, pipeline.Outstanding);
    }

    [Fact]
    public async Task A_PubAck_that_never_comes_fails_its_publish_with_a_timeout_and_leaves_nothing_behind()
    {
        // 3 s: the stored message's PubAck must be read within the timeout, even by a test process starved for a moment.
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, RequestTimeout = TimeSpan.FromSeconds(3) });
        var js = new NatsJSContext(connection);
        var (_, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);
        // A plain subscriber, not a stream: the message is taken (so no "no responders") and never answered.
        var silent = "silent." + Guid.NewGuid().ToString("N");
        await using var listener = await connection.SubscribeCoreAsync<byte[]>(silent, cancellationToken: cts.Token);

        var lost = await pipeline.PublishAsync(silent, new byte[] { 1 }, null, null, cts.Token);
        var stored = await pipeline.PublishAsync(subject + ".a", new byte[] { 2 }, null, null, cts.Token);

        Assert.Equal(1UL, (await stored.GetResponseAsync(cts.Token)).Seq);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await Assert.ThrowsAsync<TimeoutException>(() => lost.GetResponseAsync(cts.Token).AsTask());
        Assert.True(System.Diagnostics.Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(20), "the timeout came from the pipeline, not the test's own limit");
        Assert.Equal(0, pipeline.Outstanding);
    }

    [Fact]
    public async Task A_send_held_up_longer_than_the_timeout_still_gets_its_PubAck()
    {
        // A 3 s timeout (room for a starved test process once the send is done), a send held longer than it.
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, RequestTimeout = TimeSpan.FromSeconds(3) });
        var js = new NatsJSContext(connection);
        var (_, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // The connection as the pipeline sees it, whose sends of one subject take 4 s (a reconnect, a full buffer).
        var slow = System.Reflection.DispatchProxy.Create<INatsConnection, SlowSends>();
        ((SlowSends)(object)slow).Set(connection, subject + ".slow", TimeSpan.FromMilliseconds(4_000));
        var pipeline = PubAckPipeline.For(slow);

        var held = await pipeline.PublishAsync(subject + ".slow", new byte[] { 1 }, "held-1", null, cts.Token);
        var ack = await held.GetResponseAsync(cts.Token);

        Assert.Null(ack.Error);
        Assert.Equal(1UL, ack.Seq);
        Assert.Equal(0, pipeline.Outstanding);
    }

    [Fact]
    public async Task A_cancelled_wait_forgets_its_PubAck()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url, RequestTimeout = TimeSpan.FromSeconds(30) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);
        var silent = "silent." + Guid.NewGuid().ToString("N");
        await using var listener = await connection.SubscribeCoreAsync<byte[]>(silent, cancellationToken: cts.Token);
        var lost = await pipeline.PublishAsync(silent, new byte[] { 1 }, null, null, cts.Token);
        using var gaveUp = new CancellationTokenSource();

        var waiting = lost.GetResponseAsync(gaveUp.Token).AsTask();
        await gaveUp.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, pipeline.Outstanding);
    }

    [Fact]
    public async Task The_first_publisher_stopping_does_not_end_the_pipeline_for_the_others()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var (_, subject) = await CreateStreamAsync(js);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pipeline = PubAckPipeline.For(connection);

        // The first publish starts the shared reply subscription, under a token that is then cancelled
        // (a router whose lease moved, a runtime that stopped).
        using (var first = CancellationTokenSource.CreateLinkedTokenSource(cts.Token))
        {
            var ack = await (await pipeline.PublishAsync(subject + ".a", new byte[] { 1 }, null, null, first.Token)).GetResponseAsync(first.Token);
            Assert.Equal(1UL, ack.Seq);
            await first.CancelAsync();
        }

        var later = await (await pipeline.PublishAsync(subject + ".a", new byte[] { 2 }, null, null, cts.Token)).GetResponseAsync(cts.Token);
        Assert.Equal(2UL, later.Seq);
    }

    [Fact]
    public async Task After_a_server_restart_publishes_are_acked_again()
    {
        await using var server = new NatsServerFixture();
        await server.InitializeAsync();
        try
        {
            await using var connection = new NatsConnection(new NatsOpts { Url = server.Url, RequestTimeout = TimeSpan.FromSeconds(2) });
            var js = new NatsJSContext(connection);
            var (_, subject) = await CreateStreamAsync(js);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var pipeline = PubAckPipeline.For(connection);
            Assert.Equal(1UL, (await (await pipeline.PublishAsync(subject + ".a", new byte[] { 1 }, "r-1", null, cts.Token)).GetResponseAsync(cts.Token)).Seq);

            await server.RestartAsync(TimeSpan.FromMilliseconds(500), cts.Token);

            // Retried as the router and the relay do (same msg id) until the server answers again.
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    var ack = await (await pipeline.PublishAsync(subject + ".a", new byte[] { 2 }, "r-2", null, cts.Token)).GetResponseAsync(cts.Token);
                    Assert.Equal(2UL, ack.Seq);
                    break;
                }
                catch (Exception ex) when ((ex is NatsException or TimeoutException) && attempt < 40)
                {
                    await Task.Delay(250, cts.Token);
                }
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static async Task<(string Stream, string Subject)> CreateStreamAsync(NatsJSContext js, int maxMsgSize = -1)
    {
        var name = "PIPE_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var subject = "pipe." + name.ToLowerInvariant();
        await js.CreateStreamAsync(new StreamConfig(name, [subject + ".>"]) { MaxMsgSize = maxMsgSize, DuplicateWindow = TimeSpan.FromMinutes(2) });
        return (name, subject);
    }
}

/// <summary>A connection whose publishes to one subject are held up before they go out; everything else passes through.</summary>
public class SlowSends : System.Reflection.DispatchProxy
{
    private INatsConnection? _inner;
    private string _subject = string.Empty;
    private TimeSpan _delay;

    internal void Set(INatsConnection inner, string subject, TimeSpan delay) => (_inner, _subject, _delay) = (inner, subject, delay);

    protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (targetMethod.Name == nameof(INatsConnection.PublishAsync) && args is [string subject, ..] && subject == _subject)
        {
            return HeldAsync(() => (ValueTask)targetMethod.Invoke(_inner, args)!);
        }
        return targetMethod.Invoke(_inner, args);
    }

    private async ValueTask HeldAsync(Func<ValueTask> send)
    {
        await Task.Delay(_delay);
        await send();
    }
}
