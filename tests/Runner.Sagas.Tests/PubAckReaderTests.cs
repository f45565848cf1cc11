using System.Buffers;
using System.Text;
using System.Text.Json;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The PubAck reader gives what the client's serializer gives, for every shape, in one piece or many.</summary>
public sealed class PubAckReaderTests
{
    public static TheoryData<string> Shapes => new()
    {
        """{"stream":"WORKFLOW_COMMANDS","seq":42}""",
        """{"stream":"WORKFLOW_COMMANDS","seq":42,"duplicate":true}""",
        """{"stream":"KV_RUNNER_EFFECTS","domain":"hub","seq":18446744073709551615}""",
        """ { "seq" : 7 , "stream" : "S" , "val" : "12" } """,
        """{"stream":"S","seq":3,"batch":"b1","count":2,"nested":{"a":[1,{"b":null}]}}""",
        """{"stream":"S\u0041","seq":1}""",
        """{"stream":"S","seq":1,"domain":null}""",
        """{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S"}""",
        """{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}""",
        """{}""",
        """{"stream":"S","seq":-1}""",
        """{"stream":"S","seq":1.5}""",
        """{"stream":"S","seq":"1"}""",
        """{"stream":"S","duplicate":"yes","seq":1}""",
        """null""",
        // What the client's serializer makes of these (it stops after the first value, and reads nothing as
        // nothing) is what the reader must make of them too.
        """{"stream":"S","seq":1}}""",
        """{"stream":"S","seq":1} x""",
        "",
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Reads_what_the_serializer_reads(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var expected = Serializer(bytes);
        Assert.Equal(expected, Outcome(() => new PubAckReader().Read(new ReadOnlySequence<byte>(bytes))));
        Assert.Equal(expected, Outcome(() => new PubAckReader().Read(Split(bytes))));
    }

    [Theory]
    [InlineData("""{"stream":"S","seq":1""")]
    [InlineData("""[1,2]""")]
    [InlineData("""not json""")]
    public void Refuses_what_the_serializer_refuses(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.StartsWith("throws ", Serializer(bytes), StringComparison.Ordinal);
        Assert.Equal(Serializer(bytes), Outcome(() => new PubAckReader().Read(new ReadOnlySequence<byte>(bytes))));
    }

    [Fact]
    public void A_stream_name_that_repeats_is_one_string_and_a_new_one_is_read_as_it_is()
    {
        var reader = new PubAckReader();
        var first = reader.Read(Sequence("""{"stream":"INBOX","seq":1}"""))!;
        var second = reader.Read(Sequence("""{"stream":"INBOX","seq":2}"""))!;
        var other = reader.Read(Sequence("""{"stream":"OUTBOX","seq":3}"""))!;
        var back = reader.Read(Sequence("""{"stream":"INBOX","seq":4}"""))!;

        Assert.Same(first.Stream, second.Stream);
        Assert.Equal(("OUTBOX", 3UL), (other.Stream, other.Seq));
        Assert.Equal(("INBOX", 4UL), (back.Stream, back.Seq));
    }

    private static ReadOnlySequence<byte> Sequence(string json) => new(Encoding.UTF8.GetBytes(json));

    private static string Serializer(byte[] bytes) =>
        Outcome(() => NatsJSJsonSerializer<PubAckResponse>.Default.Deserialize(new ReadOnlySequence<byte>(bytes)));

    /// <summary>A PubAck or an exception, as comparable text.</summary>
    private static string Outcome(Func<PubAckResponse?> read)
    {
        try
        {
            return read() is { } ack ? JsonSerializer.Serialize(ack) : "null";
        }
        catch (Exception ex)
        {
            return "throws " + ex.GetType().Name;
        }
    }

    /// <summary>The bytes as a sequence of one-, two- and three-byte segments, as a socket may hand them over.</summary>
    private static ReadOnlySequence<byte> Split(byte[] bytes)
    {
        if (bytes.Length < 2)
        {
            return new ReadOnlySequence<byte>(bytes);
        }
        Segment? first = null;
        Segment? last = null;
        var at = 0;
        for (var size = 1; at < bytes.Length; size = (size % 3) + 1)
        {
            var take = Math.Min(size, bytes.Length - at);
            var segment = new Segment(bytes.AsMemory(at, take), last);
            first ??= segment;
            last = segment;
            at += take;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
