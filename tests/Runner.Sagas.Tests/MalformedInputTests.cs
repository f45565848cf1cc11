using System.Text;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Events;
using Runner.Messaging;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class MalformedInputTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Bad_events_are_quarantined_with_their_reason_and_terminated_while_good_ones_flow()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { MaxEventBytes = 64 * 1024 });
        using var cts = new CancellationTokenSource(s_wait);
        // The server's advisory of each terminated message: the router TERMs what it quarantined, not just acks it.
        // Subscribed (and the server past the SUB, by the ping) before anything is published.
        await using var advisories = await h.Connection.SubscribeCoreAsync<byte[]>("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.AGGREGATE_EVENTS.>", cancellationToken: cts.Token);
        await h.Connection.PingAsync(cts.Token);
        var subject = "aggregate.acme.counter.m1.added";
        await h.PublishRawAsync(subject, "this is { not json"u8.ToArray(), cancellationToken: cts.Token);
        await h.PublishRawAsync(subject, """{"specversion":"1.0","id":"x","source":"s"}"""u8.ToArray(), cancellationToken: cts.Token);
        await h.PublishRawAsync(subject, """{"id":"x","type":"added","source":"s"}"""u8.ToArray(), cancellationToken: cts.Token);
        await h.PublishRawAsync(subject, [0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d], cancellationToken: cts.Token);
        await h.PublishRawAsync(subject, Encoding.UTF8.GetBytes("{\"specversion\":\"1.0\",\"id\":\"big\",\"type\":\"added\",\"source\":\"s\",\"data\":\"" + new string('x', 200 * 1024) + "\"}"), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.other.counter.m1.added", new System.Text.Json.Nodes.JsonObject
        {
            ["specversion"] = "1.0", ["id"] = "t", ["type"] = "added", ["source"] = "s", ["tenant"] = "acme", ["data"] = new System.Text.Json.Nodes.JsonObject { ["n"] = 1 },
        }, cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.m1.added", SagaHarness.CloudEvent("good-1", "added", new { n = 1 }), cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "m1") is not null && h.Quarantine().Count == 6, s_wait, "good event processed and 6 quarantined");
        var reasons = h.Quarantine().Select(q => q.Reason).Order().ToList();
        Assert.Equal(
            new[] { DecodeError.InvalidUtf8, DecodeError.NotCloudEvent, DecodeError.NotJson, DecodeError.MissingAttribute, DecodeError.PayloadTooLarge, DecodeError.TenantMismatch }.Order(),
            reasons);

        var big = h.Quarantine().Single(q => q.Reason == DecodeError.PayloadTooLarge);
        Assert.True(big.PayloadTruncated);
        Assert.True(big.PayloadBytes > 200 * 1024);
        Assert.Equal("AGGREGATE_EVENTS", big.Stream);
        Assert.Equal(subject, big.Subject);
        var utf8 = h.Quarantine().Single(q => q.Reason == DecodeError.InvalidUtf8);
        Assert.Equal("base64", utf8.PayloadEncoding);
        Assert.Equal(new byte[] { 0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d }, Convert.FromBase64String(utf8.Payload!));

        // Terminated, not left pending: the router consumer has nothing outstanding, and each quarantined message had
        // its TERM, not an ack: the server's advisory says so for each one.
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var consumer = await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", h.RouterConsumer("AGGREGATE_EVENTS"), cts.Token);
            return consumer.Info.NumAckPending == 0 && consumer.Info.NumPending == 0;
        }, s_wait, "router consumer drained");
        var quarantined = h.Quarantine().Select(q => q.Sequence).Order().ToList();
        var terminated = new List<ulong>();
        while (terminated.Count < quarantined.Count)
        {
            var advisory = await advisories.Msgs.ReadAsync(cts.Token);
            using var json = System.Text.Json.JsonDocument.Parse(advisory.Data!);
            terminated.Add(json.RootElement.GetProperty("stream_seq").GetUInt64());
        }
        Assert.Equal(quarantined, terminated.Order().ToList());
    }

    [Fact]
    public async Task An_event_whose_header_block_cannot_be_read_is_quarantined_and_the_flow_goes_on()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        var subject = "aggregate.acme.counter.h1.added";
        // A header line without a colon: the server stores it as it came; no NATS client reads it.
        await RawPublishAsync(nats.Url, subject, "NATS/1.0\r\nthis line has no colon\r\n\r\n"u8.ToArray(),
            Encoding.UTF8.GetBytes(SagaHarness.CloudEvent("bad-headers", "added", new { n = 1 }).ToJsonString()), cts.Token);
        await h.PublishAsync(subject, SagaHarness.CloudEvent("good-after", "added", new { n = 2 }), cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "h1") is not null && h.Quarantine().Count == 1, s_wait, "the good event applied and the bad one quarantined");
        var record = h.Quarantine().Single();
        Assert.Equal("router_error", record.Reason);
        Assert.Equal(subject, record.Subject);
        Assert.Contains("header line without a name", record.Detail, StringComparison.Ordinal);
        Assert.Contains("headers unreadable", record.Detail, StringComparison.Ordinal);
        var payload = record.PayloadEncoding == "base64" ? Encoding.UTF8.GetString(Convert.FromBase64String(record.Payload!)) : record.Payload!;
        Assert.Contains("bad-headers", payload, StringComparison.Ordinal);
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var consumer = await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", h.RouterConsumer("AGGREGATE_EVENTS"), cts.Token);
            return consumer.Info.NumAckPending == 0 && consumer.Info.NumPending == 0;
        }, s_wait, "router consumer drained");
    }

    [Fact]
    public async Task Each_routed_event_carries_its_own_headers_and_body_and_no_earlier_events()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        var keys = new[] { "r1", "r2", "r3", "r4" };
        for (var i = 0; i < keys.Length; i++)
        {
            // Only every other event has a header of its own: the next one must not get it.
            var headers = i % 2 == 0 ? new NATS.Client.Core.NatsHeaders { ["x-note"] = $"note-{i}" } : null;
            // A long body, then a short one: the router writes each into the room the one before used.
            var pad = i % 2 == 0 ? new string('x', 300) : string.Empty;
            await h.PublishAsync($"aggregate.acme.counter.{keys[i]}.added", SagaHarness.CloudEvent($"own-{i}", "added", new { n = i, pad }), headers, cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => keys.All(k => h.Instance("acme", "counter", k) is not null), s_wait, "every event applied");

        var inbox = await h.Js.GetStreamAsync(h.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token);
        var seen = 0;
        for (var seq = 1UL; seq <= inbox.Info.State.LastSeq; seq++)
        {
            var stored = await inbox.GetAsync(new StreamMsgGetRequest { Seq = seq }, cts.Token);
            var raw = stored.Message.Hdrs is { } hdrs ? Encoding.UTF8.GetString(Convert.FromBase64String(hdrs)) : string.Empty;
            var headers = MessageHeaderList.Parse(Encoding.UTF8.GetBytes(raw), Encoding.ASCII);
            var key = headers[EventHeaders.Key];
            var i = Array.IndexOf(keys, key);
            Assert.True(i >= 0, $"unexpected key {key}");
            Assert.Equal("counter", headers[EventHeaders.Saga]);
            Assert.Equal($"aggregate.acme.counter.{key}.added", headers[EventHeaders.OriginSubject]);
            Assert.Equal($"AGGREGATE_EVENTS:{headers[EventHeaders.OriginSequence]}:counter", headers[EventHeaders.MsgId]);
            // Exactly its own event, nothing of a longer one before it after its end (the parse refuses trailing bytes).
            using (var body = System.Text.Json.JsonDocument.Parse(stored.Message.Data))
            {
                Assert.Equal($"own-{i}", body.RootElement.GetProperty("id").GetString());
                Assert.Equal(i, body.RootElement.GetProperty("data").GetProperty("n").GetInt32());
                Assert.Equal(i % 2 == 0 ? 300 : 0, body.RootElement.GetProperty("data").GetProperty("pad").GetString()!.Length);
            }
            if (i % 2 == 0)
            {
                Assert.Equal($"note-{i}", headers["x-note"]);
            }
            else
            {
                Assert.False(headers.ContainsKey("x-note"), $"event {i} got a header of an earlier event");
            }
            seen++;
        }
        Assert.Equal(keys.Length, seen);
    }

    /// <summary>Publishes with a header block as given, bytes for bytes (HPUB on a socket of its own), and waits for the server to have read it.</summary>
    private static async Task RawPublishAsync(string url, string subject, byte[] headers, byte[] payload, CancellationToken cancellationToken)
    {
        var uri = new Uri(url);
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port, cancellationToken);
        await using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var info = await reader.ReadLineAsync(cancellationToken);
        Assert.StartsWith("INFO ", info, StringComparison.Ordinal);
        var frame = new MemoryStream();
        frame.Write(Encoding.ASCII.GetBytes("CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n"));
        frame.Write(Encoding.ASCII.GetBytes($"HPUB {subject} {headers.Length} {headers.Length + payload.Length}\r\n"));
        frame.Write(headers);
        frame.Write(payload);
        frame.Write("\r\nPING\r\n"u8);
        await stream.WriteAsync(frame.ToArray(), cancellationToken);
        string? line;
        while ((line = await reader.ReadLineAsync(cancellationToken)) is not null && line != "PONG")
        {
            Assert.DoesNotContain("-ERR", line, StringComparison.Ordinal);
        }
        Assert.Equal("PONG", line);
    }

    [Fact]
    public async Task Event_without_a_correlation_value_is_quarantined_for_that_saga()
    {
        var files = TestSagas.Counter();
        files["counter.yaml"] = files["counter.yaml"].Replace("correlation: \"subject[3]\"", "correlation: \"$.data.order_id\"", StringComparison.Ordinal);
        await using var h = await SagaHarness.StartAsync(nats, files);
        using var cts = new CancellationTokenSource(s_wait);
        await h.PublishAsync("aggregate.acme.counter.x.added", SagaHarness.CloudEvent("nokey", "added", new { n = 1 }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.x.added", SagaHarness.CloudEvent("haskey", "added", new { n = 2, order_id = "o-5" }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "o-5") is not null && h.Quarantine().Count == 1, s_wait, "routing");
        var record = h.Quarantine().Single();
        Assert.Equal("no_correlation_key", record.Reason);
        Assert.Equal("counter", record.Saga);
        Assert.Contains("$.data.order_id", record.Detail, StringComparison.Ordinal);
    }
}
