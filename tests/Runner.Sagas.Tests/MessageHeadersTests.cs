using NATS.Client.Core;
using Runner.Core.Events;
using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>A delivered message's header block as <see cref="MessageHeaderList"/> reads it: what the NATS client's own parser gives, read as names and first values.</summary>
public sealed class MessageHeaderListTests
{
    private static readonly System.Text.Encoding Ascii = System.Text.Encoding.ASCII;

    private static byte[] Block(string lines) => System.Text.Encoding.UTF8.GetBytes("NATS/1.0\r\n" + lines + "\r\n");

    [Fact]
    public void Reads_what_the_client_reads_as_names_and_first_values()
    {
        var raw = Block("Runner-Saga: orders\r\ncorrelation-id:first\r\nCorrelation-ID:  second \r\nempty: \r\nNats-Msg-Id:\t m-1\t\r\n");

        var headers = MessageHeaderList.Parse(raw, Ascii);

        var client = new NatsHeaders();
        Assert.True(new NatsHeaderParser(Ascii).ParseHeaders(new System.Buffers.SequenceReader<byte>(new System.Buffers.ReadOnlySequence<byte>(raw)), client));
        Assert.Equal(client.Select(p => new KeyValuePair<string, string>(p.Key, p.Value[0]!)).OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase),
            headers.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase));
        Assert.Equal("orders", headers["RUNNER-SAGA"]);
        Assert.Equal("first", headers["correlation-ID"]);
        Assert.Equal(string.Empty, headers["empty"]);
        Assert.Equal("m-1", headers["nats-msg-id"]);
        Assert.Equal(4, headers.Count);
        Assert.Equal(["Runner-Saga", "correlation-id", "empty", "Nats-Msg-Id"], headers.Select(p => p.Key));
        Assert.False(headers.TryGetValue("missing", out _));
    }

    [Fact]
    public void Names_and_repeating_values_are_shared_strings_other_values_are_not()
    {
        var first = MessageHeaderList.Parse(Block("tenant-id: acme\r\nrunner-key: k-1\r\n"), Ascii);
        var second = MessageHeaderList.Parse(Block("tenant-id: acme\r\nrunner-key: k-1\r\n"), Ascii);

        Assert.Same(first.NameAt(0), second.NameAt(0));
        Assert.Same(first["tenant-id"], second["tenant-id"]);
        Assert.NotSame(first["runner-key"], second["runner-key"]);
        Assert.Equal(first["runner-key"], second["runner-key"]);
    }

    [Fact]
    public void A_value_that_is_not_ascii_is_decoded_as_the_connection_decodes_it()
    {
        var raw = Block("note: caf\u00e9\r\n");

        Assert.Equal("caf\u00e9", MessageHeaderList.Parse(raw, System.Text.Encoding.UTF8)["note"]);
        Assert.Equal(Ascii.GetString(System.Text.Encoding.UTF8.GetBytes("caf\u00e9")), MessageHeaderList.Parse(raw, Ascii)["note"]);
    }

    [Theory]
    [InlineData("HTTP/1.1\r\nname: v\r\n\r\n")]
    [InlineData("NATS/1.01\r\nname: v\r\n\r\n")]
    [InlineData("NATS/1.0\r\nname v\r\n\r\n")]
    [InlineData("NATS/1.0\r\n: v\r\n\r\n")]
    [InlineData("NATS/1.0\r\nname: v")]
    public void A_block_the_client_would_refuse_is_refused(string block)
    {
        var error = Assert.Throws<FormatException>(() => MessageHeaderList.Parse(System.Text.Encoding.ASCII.GetBytes(block), Ascii));
        Assert.NotEmpty(error.Message);
    }

    [Fact]
    public void A_copy_for_a_stored_record_holds_the_same_and_stays_case_insensitive()
    {
        var copy = NatsMessages.CopyHeaders(MessageHeaderList.Parse(Block("Runner-Saga: orders\r\ncorrelation-id: first\r\n"), Ascii));

        Assert.Equal(2, copy.Count);
        Assert.Equal("first", copy["Correlation-Id"]);
        Assert.Equal("orders", copy["runner-saga"]);
    }

    [Fact]
    public void An_event_decoded_from_them_shows_the_visible_ones_without_copying()
    {
        var headers = MessageHeaderList.Parse(Block("Runner-Saga: orders\r\ncorrelation-id: first\r\ntraceparent: 00-abc\r\nNats-Msg-Id: m-1\r\n"), Ascii);
        var origin = new MessageOrigin("AGGREGATE_EVENTS", 1, "aggregate.acme.order.1.created", DateTimeOffset.UnixEpoch);

        Assert.True(CloudEventDecoder.TryDecode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}"""u8.ToArray(), headers, origin, 1 << 20, out var evt, out var error), error?.Message);

        Assert.Equal(["correlation-id", "traceparent"], evt!.Headers.Keys.Order(StringComparer.Ordinal));
        Assert.True(CloudEventDecoder.TryGetHeader(evt.Headers, "TRACEPARENT", out var trace));
        Assert.Equal("00-abc", trace);
        Assert.False(CloudEventDecoder.TryGetHeader(evt.Headers, "runner-saga", out _));
    }

    [Fact]
    public void Values_are_made_when_asked_for_and_are_what_the_client_reads()
    {
        var raw = Block("Runner-Saga: orders\r\nNats-Msg-Id:\t AGGREGATE_EVENTS:7:orders \r\ncorrelation-id:  c-1\r\nRunner-Origin-Seq: 42\r\nnote: caf\u00e9\r\nCorrelation-ID: second\r\n");
        var client = new NatsHeaders();
        Assert.True(new NatsHeaderParser(System.Text.Encoding.UTF8).ParseHeaders(new System.Buffers.SequenceReader<byte>(new System.Buffers.ReadOnlySequence<byte>(raw)), client));

        var lazy = MessageHeaderList.Parse(raw, System.Text.Encoding.UTF8);

        Assert.Equal(client.Count, lazy.Length);
        Assert.All(Enumerable.Range(0, lazy.Length), i => Assert.False(lazy.IsMade(i)));
        Assert.Equal("c-1", lazy["CORRELATION-ID"]);
        Assert.True(lazy.IsMade(2));
        Assert.Same(lazy["correlation-id"], lazy.ValueAt(2));
        Assert.False(lazy.IsMade(1));
        Assert.Equal(client.Select(p => new KeyValuePair<string, string>(p.Key, p.Value[0]!)).OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase),
            lazy.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase));
        Assert.Equal("caf\u00e9", lazy["note"]);
        Assert.Equal("AGGREGATE_EVENTS:7:orders", lazy["nats-msg-id"]);
    }

    [Theory]
    [InlineData("42", true, 42L, true, 42L)]
    [InlineData("-7", true, -7L, false, 0L)]
    [InlineData("1700000000123", true, 1_700_000_000_123L, true, 1_700_000_000_123L)]
    [InlineData("4x", false, 0L, false, 0L)]
    [InlineData("18446744073709551615", false, 0L, true, ulong.MaxValue)]
    [InlineData("\u0664\u0662", false, 0L, false, 0L)]
    public void Numbers_are_read_from_their_bytes_as_from_their_text(string text, bool isLong, long asLong, bool isUlong, ulong asUlong)
    {
        var raw = System.Text.Encoding.UTF8.GetBytes($"NATS/1.0\r\nn: {text}\r\n\r\n");
        // One list whose value is still only bytes, one whose text has been made: a number reads the same from either.
        var made = MessageHeaderList.Parse(raw, System.Text.Encoding.UTF8);
        Assert.Equal(text, made.ValueAt(0));
        foreach (var headers in new[] { MessageHeaderList.Parse(raw, System.Text.Encoding.UTF8), made })
        {
            Assert.Equal((isLong, asLong), (headers.TryGetNumber("N", System.Globalization.NumberStyles.Integer, out long l), l));
            Assert.Equal((isUlong, asUlong), (headers.TryGetNumber("n", System.Globalization.NumberStyles.None, out ulong u), u));
            Assert.Equal(long.TryParse(headers["n"], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out _), isLong);
            Assert.False(headers.TryGetNumber("missing", System.Globalization.NumberStyles.Integer, out long _));
        }
    }

    [Fact]
    public void An_events_visible_headers_make_no_value_of_an_internal_header()
    {
        var headers = MessageHeaderList.Parse(Block("Runner-Saga: orders\r\ncorrelation-id: c-1\r\nNats-Msg-Id: m-1\r\nRunner-Key: k-1\r\n"), Ascii);
        var origin = new MessageOrigin("AGGREGATE_EVENTS", 1, "aggregate.acme.order.1.created", DateTimeOffset.UnixEpoch);
        Assert.True(CloudEventDecoder.TryDecode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}"""u8.ToArray(), headers, origin, 1 << 20, out var evt, out var error), error?.Message);

        Assert.Equal([new KeyValuePair<string, string>("correlation-id", "c-1")], evt!.Headers.ToArray());

        Assert.Equal([false, true, false, false], Enumerable.Range(0, headers.Length).Select(headers.IsMade));
    }

    [Fact]
    public void No_block_or_a_bare_version_line_is_no_headers()
    {
        Assert.Empty(MessageHeaderList.Parse((byte[]?)null, Ascii));
        Assert.Empty(MessageHeaderList.Parse(Block(string.Empty), Ascii));
    }
}
