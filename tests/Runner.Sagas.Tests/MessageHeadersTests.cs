using Microsoft.Extensions.Primitives;
using NATS.Client.Core;
using Runner.Core.Events;
using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>A received message's headers as the router and the partition worker read them: a view over the client's table.</summary>
public sealed class MessageHeadersTests
{
    private static NatsHeaders Received() => new()
    {
        ["Runner-Saga"] = "orders",
        ["correlation-id"] = new StringValues(["first", "second"]),
        ["empty"] = StringValues.Empty,
        ["Nats-Msg-Id"] = "m-1",
    };

    [Fact]
    public void Names_are_looked_up_in_any_case_and_a_name_stands_for_its_first_value()
    {
        var headers = NatsMessages.Headers(Received());

        Assert.Equal("orders", headers["runner-saga"]);
        Assert.Equal("first", headers["CORRELATION-ID"]);
        Assert.False(headers.TryGetValue("empty", out _));
        Assert.False(headers.ContainsKey("missing"));
        Assert.Throws<KeyNotFoundException>(() => headers["missing"]);
        Assert.Equal(3, headers.Count);
        Assert.Equal(["Nats-Msg-Id", "Runner-Saga", "correlation-id"], headers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["first", "m-1", "orders"], headers.Values.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_copy_for_a_stored_record_holds_the_same_and_stays_case_insensitive()
    {
        var copy = NatsMessages.CopyHeaders(Received());

        Assert.Equal(3, copy.Count);
        Assert.Equal("first", copy["Correlation-Id"]);
        Assert.Empty(NatsMessages.CopyHeaders(null));
        Assert.Empty(NatsMessages.Headers(null));
    }

    [Fact]
    public void An_event_decoded_from_them_shows_the_visible_ones_without_copying()
    {
        var nats = Received();
        nats["traceparent"] = "00-abc";
        var origin = new MessageOrigin("AGGREGATE_EVENTS", 1, "aggregate.acme.order.1.created", DateTimeOffset.UnixEpoch);

        Assert.True(CloudEventDecoder.TryDecode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}"""u8.ToArray(), NatsMessages.Headers(nats), origin, 1 << 20, out var evt, out var error), error?.Message);

        Assert.Equal(["correlation-id", "traceparent"], evt!.Headers.Keys.Order(StringComparer.Ordinal));
        Assert.True(CloudEventDecoder.TryGetHeader(evt.Headers, "TRACEPARENT", out var trace));
        Assert.Equal("00-abc", trace);
        Assert.False(CloudEventDecoder.TryGetHeader(evt.Headers, "runner-saga", out _));
    }
}
