using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Runner.Core.Events;
using Runner.Core.Json;

namespace Runner.Messaging;

/// <summary>Sends a message's acknowledgements: the subscription it came through.</summary>
internal interface IAckSender
{
    ValueTask SendAsync(string replyTo, byte[] payload, CancellationToken cancellationToken);

    /// <summary>Sends, and waits for the server to confirm it has the acknowledgement.</summary>
    ValueTask ConfirmAsync(string replyTo, byte[] payload, CancellationToken cancellationToken);
}

/// <summary>
/// A message a JetStream pull consumer delivered (<see cref="PullConsumer"/>): its subject, its reply
/// subject (which names its delivery, and takes its acknowledgements), its body and its headers. The
/// headers are kept as the bytes they came as and read when first asked for, on the reader's thread
/// rather than the connection's.
/// </summary>
internal sealed class JetStreamMessage
{
    private static readonly byte[] s_ack = "+ACK"u8.ToArray();
    private static readonly byte[] s_nak = "-NAK"u8.ToArray();
    private static readonly byte[] s_term = "+TERM"u8.ToArray();
    private static readonly byte[] s_progress = "+WPI"u8.ToArray();

    private readonly IAckSender _acks;
    private readonly byte[]? _rawHeaders;
    private readonly Encoding _encoding;
    private MessageHeaderList? _headers;

    public JetStreamMessage(IAckSender acks, string subject, string replyTo, byte[]? rawHeaders, byte[] data, Encoding headerEncoding)
    {
        _acks = acks;
        Subject = subject;
        ReplyTo = replyTo;
        _rawHeaders = rawHeaders;
        Data = data;
        _encoding = headerEncoding;
    }

    public string Subject { get; }

    /// <summary>The JetStream reply subject: <c>$JS.ACK.…</c>, read by <see cref="Delivery"/>.</summary>
    public string ReplyTo { get; }

    public byte[] Data { get; }

    /// <summary>Names and their first values, looked up case-insensitively; empty for a message without headers.</summary>
    public MessageHeaderList Headers => _headers ??= MessageHeaderList.Parse(_rawHeaders, _encoding);

    public ValueTask AckAsync(CancellationToken cancellationToken = default) => _acks.SendAsync(ReplyTo, s_ack, cancellationToken);

    /// <summary>An ack; with <paramref name="confirm"/>, one the server confirms it has (a double ack) before this returns.</summary>
    public ValueTask AckAsync(bool confirm, CancellationToken cancellationToken = default) =>
        confirm ? _acks.ConfirmAsync(ReplyTo, s_ack, cancellationToken) : _acks.SendAsync(ReplyTo, s_ack, cancellationToken);

    public ValueTask NakAsync(CancellationToken cancellationToken = default) => _acks.SendAsync(ReplyTo, s_nak, cancellationToken);

    /// <summary>A NAK: delivered again once <paramref name="delay"/> has passed (at once when it is zero).</summary>
    public ValueTask NakAsync(TimeSpan delay, CancellationToken cancellationToken = default) =>
        delay <= TimeSpan.Zero
            ? _acks.SendAsync(ReplyTo, s_nak, cancellationToken)
            : _acks.SendAsync(ReplyTo, Encoding.ASCII.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"-NAK {{\"delay\":{delay.Ticks * 100}}}")), cancellationToken);

    public ValueTask AckTerminateAsync(CancellationToken cancellationToken = default) => _acks.SendAsync(ReplyTo, s_term, cancellationToken);

    public ValueTask AckProgressAsync(CancellationToken cancellationToken = default) => _acks.SendAsync(ReplyTo, s_progress, cancellationToken);
}

/// <summary>
/// A message's NATS headers as names and their first values (a name given twice keeps its first value,
/// as the client's table reads it), looked up case-insensitively. Names, and the values of the headers
/// that repeat from message to message (tenant, saga, partition, origin stream, content type), are
/// shared strings; only the other values are made per message.
/// </summary>
internal sealed class MessageHeaderList : HeaderView
{
    public static readonly MessageHeaderList Empty = new([], 0);

    private static readonly byte[] s_version = "NATS/1.0"u8.ToArray();

    private static readonly HashSet<string> s_repeating = new(StringComparer.OrdinalIgnoreCase)
    {
        EventHeaders.TenantId, EventHeaders.Saga, EventHeaders.Partition, EventHeaders.OriginStream, EventHeaders.ContentType,
    };

    private readonly KeyValuePair<string, string>[] _pairs;
    private readonly int _count;

    private MessageHeaderList(KeyValuePair<string, string>[] pairs, int count)
    {
        _pairs = pairs;
        _count = count;
    }

    /// <summary>The headers in the order they came, one per name.</summary>
    public ReadOnlySpan<KeyValuePair<string, string>> Pairs => _pairs.AsSpan(0, _count);

    public override bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        foreach (var (name, found) in Pairs)
        {
            if (string.Equals(name, key, StringComparison.OrdinalIgnoreCase))
            {
                value = found;
                return true;
            }
        }
        value = null;
        return false;
    }

    public override IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        for (var i = 0; i < _count; i++)
        {
            yield return _pairs[i];
        }
    }

    /// <summary>
    /// Reads a header block as the NATS client does (<c>NATS/1.0</c> then <c>Name: value</c> lines, the
    /// value's surrounding spaces and tabs left out, each decoded with <paramref name="encoding"/>); throws a
    /// <see cref="FormatException"/> for a block the client would refuse.
    /// </summary>
    public static MessageHeaderList Parse(ReadOnlySpan<byte> block, Encoding encoding)
    {
        if (block.IsEmpty)
        {
            return Empty;
        }
        var end = block.IndexOf("\r\n"u8);
        // The version is the line's first token, as the client reads it ("NATS/1.0", or "NATS/1.0 408 Request Timeout").
        var first = block[..Math.Max(end, 0)];
        var space = first.IndexOf((byte)' ');
        if (end < 0 || !(space < 0 ? first : first[..space]).SequenceEqual(s_version))
        {
            throw new FormatException("header block does not start with NATS/1.0");
        }
        var rest = block[(end + 2)..];
        if (!rest.IsEmpty && !rest.EndsWith("\r\n"u8))
        {
            throw new FormatException("header line without its line end");
        }
        var lines = rest.Count("\r\n"u8);
        if (lines == 0)
        {
            return Empty;
        }
        var pairs = new KeyValuePair<string, string>[lines];
        var count = 0;
        while (!rest.IsEmpty)
        {
            end = rest.IndexOf("\r\n"u8);
            if (end < 0)
            {
                throw new FormatException("header line without its line end");
            }
            var line = rest[..end];
            rest = rest[(end + 2)..];
            if (line.IsEmpty)
            {
                continue;
            }
            var colon = line.IndexOfAny((byte)':', (byte)' ', (byte)'\t');
            if (colon <= 0 || line[colon] != (byte)':')
            {
                throw new FormatException($"header line without a name: '{encoding.GetString(line)}'");
            }
            var value = line[(colon + 1)..].Trim(" \t"u8);
            var name = Text(line[..colon], encoding, share: true);
            if (Find(pairs, count, name))
            {
                continue;
            }
            pairs[count++] = new KeyValuePair<string, string>(name, Text(value, encoding, share: s_repeating.Contains(name)));
        }
        return count == 0 ? Empty : new MessageHeaderList(pairs, count);
    }

    public static MessageHeaderList Parse(byte[]? block, Encoding encoding) => block is null ? Empty : Parse(block.AsSpan(), encoding);

    private static bool Find(KeyValuePair<string, string>[] pairs, int count, string name)
    {
        for (var i = 0; i < count; i++)
        {
            if (string.Equals(pairs[i].Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>ASCII text (what every header name and nearly every value is) shared where asked; anything else decoded as the connection decodes it.</summary>
    private static string Text(ReadOnlySpan<byte> bytes, Encoding encoding, bool share) =>
        share && System.Text.Ascii.IsValid(bytes) ? Utf8Strings.Get(bytes) : encoding.GetString(bytes);
}
