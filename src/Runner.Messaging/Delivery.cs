using System.Globalization;

namespace Runner.Messaging;

/// <summary>
/// What JetStream says of one delivery, read from the message's reply subject without allocating:
/// <c>$JS.ACK.stream.consumer.delivered.sseq.cseq.time.pending</c>, or with a domain and account
/// hash after <c>ACK</c> and a token at the end (ADR-15). The client's <c>Metadata</c> splits the
/// subject into a string per token, and an array, on its first read of each message; every
/// consumer of Runner reads these fields of every message. The values are the client's: the time
/// in whole milliseconds, UTC.
/// </summary>
internal readonly record struct Delivery(ulong StreamSequence, ulong ConsumerSequence, ulong NumDelivered, DateTimeOffset Timestamp)
{
    private const int V1Tokens = 9;
    private const int V2Tokens = 11;
    private const int MaxStreamNames = 256;

    private static readonly Runner.Core.Json.SharedStrings s_streams = new(MaxStreamNames);

    /// <summary>The delivery of a message a <see cref="PullConsumer"/> delivered; null when its reply subject is not JetStream's.</summary>
    public static Delivery? Of(JetStreamMessage msg) => Read(msg.ReplyTo, withStream: false, out _);

    /// <summary>As <see cref="Of(JetStreamMessage)"/>, and the stream it came from.</summary>
    public static Delivery? Of(JetStreamMessage msg, out string? stream) => Read(msg.ReplyTo, withStream: true, out stream);

    /// <summary>
    /// The delivery of a message read from a consumer, which always has one: a reply subject Runner cannot read is
    /// a change of the server's protocol, and the message must not pass as one already handled (sequence 0).
    /// </summary>
    public static Delivery Required(JetStreamMessage msg) => Of(msg) ?? throw Unreadable(msg.Subject, msg.ReplyTo);

    public static InvalidOperationException Unreadable(string subject, string? reply) =>
        new($"message on {subject} has no JetStream reply subject that can be read: '{reply}'");

    public static Delivery? Parse(string? reply) => Read(reply, withStream: false, out _);

    public static Delivery? Parse(string? reply, out string? stream) => Read(reply, withStream: true, out stream);

    private static Delivery? Read(string? reply, bool withStream, out string? stream)
    {
        stream = null;
        if (!TryTokens(reply, out var tokens, out var at))
        {
            return null;
        }
        var subject = reply.AsSpan();
        if (!ulong.TryParse(subject[tokens[at + 2]], NumberStyles.None, CultureInfo.InvariantCulture, out var delivered)
            || !ulong.TryParse(subject[tokens[at + 3]], NumberStyles.None, CultureInfo.InvariantCulture, out var streamSequence)
            || !ulong.TryParse(subject[tokens[at + 4]], NumberStyles.None, CultureInfo.InvariantCulture, out var consumerSequence)
            || !long.TryParse(subject[tokens[at + 5]], NumberStyles.None, CultureInfo.InvariantCulture, out var nanoseconds))
        {
            return null;
        }
        if (withStream)
        {
            stream = StreamName(subject[tokens[at]]);
        }
        return new Delivery(streamSequence, consumerSequence, delivered, DateTimeOffset.FromUnixTimeMilliseconds(nanoseconds / 1_000_000));
    }

    /// <summary>A stream name seen before is the same string, not a new one.</summary>
    private static string StreamName(ReadOnlySpan<char> name) => s_streams.Get(name);

    /// <summary>The token ranges of a JetStream reply subject, and where its stream name is (after the domain and hash of the longer form).</summary>
    private static bool TryTokens([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? reply, out TokenRanges tokens, out int streamAt)
    {
        tokens = default;
        streamAt = 0;
        if (reply is null || !reply.StartsWith("$JS.ACK.", StringComparison.Ordinal))
        {
            return false;
        }
        var count = reply.AsSpan().Split(tokens, '.');
        if (count is < V1Tokens or (> V1Tokens and < V2Tokens))
        {
            return false;
        }
        streamAt = count == V1Tokens ? 2 : 4;
        return true;
    }

    /// <summary>Room for the tokens up to the pending count of the longer form, and the rest in one.</summary>
    [System.Runtime.CompilerServices.InlineArray(13)]
    private struct TokenRanges
    {
        private Range _first;
    }
}
