using Runner.Core.Events;
using Runner.Sagas.Quarantine;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// What the router does when an inbox publish fails: an inbox that does not answer (no leader,
/// NATS restarting) is waited out however long it lasts, while a message the inbox refuses for
/// good is quarantined after <c>RUNNER_MAX_DELIVER</c> refusals and the stream goes on.
/// </summary>
public sealed class RouterRetryTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const int MaxDeliver = 2;

    [Fact]
    public async Task An_inbox_that_does_not_answer_for_longer_than_max_deliver_attempts_is_waited_out_and_quarantines_nothing()
    {
        var logs = new ReviewLogs();
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { JetStream = o.JetStream with { MaxDeliver = MaxDeliver } }, loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var inbox = h.Options.JetStream.Streams.Inbox;
        var config = (await h.Js.GetStreamAsync(inbox, cancellationToken: cts.Token)).Info.Config;

        // No inbox stream: every publish to it meets "no responders", as while its leader is elected.
        await h.Js.DeleteStreamAsync(inbox, cts.Token);
        const int events = 8;
        for (var i = 0; i < events; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % 3}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => RouterFailures(logs) > 2 * MaxDeliver, TimeSpan.FromSeconds(40),
            $"the router failed more than {2 * MaxDeliver} times");
        Assert.Empty(h.Quarantine());
        Assert.Equal(0, h.Listener.Count);

        await h.Js.CreateStreamAsync(config, cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == events, TimeSpan.FromSeconds(40), "every event applied once the inbox is back");
        Assert.Empty(h.Quarantine());
        Assert.Equal(events, Enumerable.Range(0, 3).Sum(k => h.Instance("acme", "counter", $"k{k}")!.Version));
    }

    /// <summary>
    /// An inbox that is not answering (no leader, NATS restarting) is not sent a whole batch on every attempt: after a
    /// batch that failed, and at start, the router's next attempt sends its first publish alone, and the rest only once
    /// that one is stored.
    /// </summary>
    [Fact]
    public async Task After_a_batch_the_inbox_did_not_store_the_router_sends_one_publish_until_the_inbox_stores_again()
    {
        var logs = new ReviewLogs();
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var inbox = h.Options.JetStream.Streams.Inbox;
        var config = (await h.Js.GetStreamAsync(inbox, cancellationToken: cts.Token)).Info.Config;

        // Every publish the router makes to the inbox, stored or not.
        var sent = 0;
        var connection = (NATS.Client.Core.NatsConnection)h.Js.Connection;
        await using var sub = await connection.SubscribeCoreAsync<byte[]>("runner.inbox.>", cancellationToken: cts.Token);
        var reading = Task.Run(async () =>
        {
            await foreach (var _ in sub.Msgs.ReadAllAsync(cts.Token))
            {
                Interlocked.Increment(ref sent);
            }
        }, cts.Token);
        await connection.PingAsync(cts.Token);

        // No inbox stream: every publish to it meets "no responders", as while its leader is elected.
        await h.Js.DeleteStreamAsync(inbox, cts.Token);
        const int events = 8;
        for (var i = 0; i < events; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % 3}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => RouterFailures(logs) >= 3, TimeSpan.FromSeconds(40), "the router failed three times");
        var failures = RouterFailures(logs);
        await connection.PingAsync(cts.Token);
        // One publish per attempt (the attempt under way may have sent its own), not the whole batch each time.
        Assert.InRange(Volatile.Read(ref sent), failures, failures + 1);

        await h.Js.CreateStreamAsync(config, cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == events, TimeSpan.FromSeconds(40), "every event applied once the inbox is back");
        Assert.Empty(h.Quarantine());
        Assert.Equal(events, Enumerable.Range(0, 3).Sum(k => h.Instance("acme", "counter", $"k{k}")!.Version));
        await sub.UnsubscribeAsync();
        await reading;
    }

    [Fact]
    public async Task A_message_the_inbox_refuses_for_good_is_quarantined_after_max_deliver_refusals_and_the_next_is_routed()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { JetStream = o.JetStream with { MaxDeliver = MaxDeliver } });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var inbox = h.Options.JetStream.Streams.Inbox;
        var config = (await h.Js.GetStreamAsync(inbox, cancellationToken: cts.Token)).Info.Config;
        await h.Js.UpdateStreamAsync(config with { MaxMsgSize = 4096 }, cts.Token);

        var big = await h.PublishAsync("aggregate.acme.counter.k0.added",
            SagaHarness.CloudEvent("e-big", "added", new { n = 0, pad = new string('x', 8192) }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k1.added", SagaHarness.CloudEvent("e-small", "added", new { n = 1 }), cancellationToken: cts.Token);

        // The refused message's later batch mates may reach the inbox before its last refusal
        // (they are published together): wait for both outcomes, in whichever order they come.
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 1 && h.Quarantine().Count == 1, TimeSpan.FromSeconds(30),
            "the refused event quarantined and the one after it applied");
        var record = Assert.Single(h.Quarantine());
        Assert.Equal(QuarantineRecords.MaxDeliverExceeded, record.Reason);
        Assert.Equal("AGGREGATE_EVENTS", record.Stream);
        Assert.Equal(big, record.Sequence);
        Assert.Contains($"refused the publish {MaxDeliver} times", record.Detail, StringComparison.Ordinal);
        Assert.Null(h.Instance("acme", "counter", "k0"));
        Assert.Equal(1, h.Instance("acme", "counter", "k1")!.Version);
    }

    /// <summary>
    /// Through the router's own loop, with batches of two so that a batch's first pass goes out while the one before it
    /// is in flight: a key's refused event is followed by later events of that key in its batch and in the next ones.
    /// None of them is stored while it is refused. When the inbox takes it in the end, they follow it in order; when
    /// it is quarantined instead, they apply in order without it.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Later_events_of_a_refused_key_wait_for_it_across_batches_in_flight(bool quarantined)
    {
        var logs = new ReviewLogs();
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { JetStream = o.JetStream with { MaxDeliver = quarantined ? MaxDeliver : 1_000, Batch = 2 } }, start: false, loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var streams = h.Options.JetStream.Streams;
        var config = (await h.Js.GetStreamAsync(streams.Inbox, cancellationToken: cts.Token)).Info.Config;
        await h.Js.UpdateStreamAsync(config with { MaxMsgSize = 4096 }, cts.Token);

        // Another key's event first: the router's first publish (and its first after a failure) goes out alone, and this
        // one is stored, so the refused event is met in the middle of a batch with everything after it going out.
        await h.PublishAsync("aggregate.acme.counter.k9.added", SagaHarness.CloudEvent("e-0", "added", new { n = 0 }), cancellationToken: cts.Token);
        var big = await h.PublishAsync("aggregate.acme.counter.k0.added",
            SagaHarness.CloudEvent("e-1", "added", new { n = 1, pad = new string('x', 8192) }), cancellationToken: cts.Token);
        var rest = new (string Key, int N)[] { ("k0", 2), ("k1", 3), ("k0", 4), ("k2", 5), ("k0", 6), ("k1", 7) };
        foreach (var (key, n) in rest)
        {
            await h.PublishAsync($"aggregate.acme.counter.{key}.added", SagaHarness.CloudEvent($"e-{n}", "added", new { n }), cancellationToken: cts.Token);
        }
        await h.StartRuntimeAsync();

        List<int> k0Order = [2, 4, 6];
        if (!quarantined)
        {
            await SagaHarness.WaitUntilAsync(() => RouterFailures(logs) >= 3, TimeSpan.FromSeconds(30), "the refused event routed three times");
            Assert.DoesNotContain((await h.MessagesAsync(streams.Inbox, cts.Token)), m => m.Headers![EventHeaders.Key].ToString() == "k0");
            await h.Js.UpdateStreamAsync(config, cts.Token);
            k0Order = [1, 2, 4, 6];
        }

        var applied = k0Order.Count + 4;
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == applied && h.Quarantine().Count == (quarantined ? 1 : 0), TimeSpan.FromSeconds(30),
            "every event applied or quarantined");
        if (quarantined)
        {
            var record = Assert.Single(h.Quarantine());
            Assert.Equal(QuarantineRecords.MaxDeliverExceeded, record.Reason);
            Assert.Equal(big, record.Sequence);
        }
        Assert.Equal(k0Order, h.Instance("acme", "counter", "k0")!.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([3, 7], h.Instance("acme", "counter", "k1")!.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(1, h.Instance("acme", "counter", "k2")!.Version);
        Assert.Equal(1, h.Instance("acme", "counter", "k9")!.Version);
        // In the inbox too, k0's events are stored in their order, each once (copies sent again were dropped as duplicates).
        var k0 = (await h.MessagesAsync(streams.Inbox, cts.Token)).Where(m => m.Headers![EventHeaders.Key].ToString() == "k0")
            .Select(m => System.Text.Json.JsonDocument.Parse(m.Data).RootElement.GetProperty("id").GetString());
        Assert.Equal(k0Order.Select(n => $"e-{n}"), k0);
    }

    /// <summary>
    /// A producer's raw client can store a header name the NATS client reads but will not write
    /// (a DEL byte in it). Copying it into the inbox publish would fail before sending, on every
    /// attempt: the router leaves that header out and routes the event.
    /// </summary>
    [Fact]
    public async Task A_trigger_with_a_header_name_the_client_cannot_write_is_routed_without_that_header()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { JetStream = o.JetStream with { MaxDeliver = MaxDeliver } });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(SagaHarness.CloudEvent("e-odd-header", "added", new { n = 1 }));
        await RawPublishAsync(new Uri(nats.Url), "aggregate.acme.counter.k0.added", "NATS/1.0\r\nx-odd\u007fname: v\r\nx-fine: kept\r\n\r\n", payload, cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k1.added", SagaHarness.CloudEvent("e-after", "added", new { n = 2 }), cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 2, TimeSpan.FromSeconds(30), "both events applied");
        Assert.Empty(h.Quarantine());
        Assert.Equal(1, h.Instance("acme", "counter", "k0")!.Version);
        var inbox = await h.MessagesAsync(h.Options.JetStream.Streams.Inbox, cts.Token);
        var routed = Assert.Single(inbox, m => m.Headers is { } headers && headers.TryGetValue("x-fine", out var fine) && fine.ToString() == "kept");
        Assert.DoesNotContain(routed.Headers!.Keys, k => k.StartsWith("x-odd", StringComparison.Ordinal));
    }

    /// <summary>Publishes with the NATS protocol by hand (HPUB), as a client that does not check header names would.</summary>
    private static async Task RawPublishAsync(Uri server, string subject, string headers, byte[] payload, CancellationToken cancellationToken)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, cancellationToken);
        var stream = tcp.GetStream();
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII, false, 4096, leaveOpen: true);
        var info = await reader.ReadLineAsync(cancellationToken);
        Assert.StartsWith("INFO ", info, StringComparison.Ordinal);
        var head = System.Text.Encoding.Latin1.GetBytes(headers);
        var command = System.Text.Encoding.ASCII.GetBytes(
            "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n"
            + $"HPUB {subject} {head.Length} {head.Length + payload.Length}\r\n");
        await stream.WriteAsync(command, cancellationToken);
        await stream.WriteAsync(head, cancellationToken);
        await stream.WriteAsync(payload, cancellationToken);
        await stream.WriteAsync("\r\nPING\r\n"u8.ToArray(), cancellationToken);
        string? line;
        while ((line = await reader.ReadLineAsync(cancellationToken)) is not null && line != "PONG")
        {
            Assert.False(line.StartsWith("-ERR", StringComparison.Ordinal), $"the server refused the publish: {line}");
        }
        Assert.Equal("PONG", line);
    }

    private static int RouterFailures(ReviewLogs logs) =>
        logs.Lines.Count(l => l.Contains("router publish for AGGREGATE_EVENTS#", StringComparison.Ordinal));
}
