using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Numerics;
using System.Text;
using NATS.Client.Core;
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

/// <summary>Acks that go nowhere: for a message built in-process that no server delivered (the warm-up's, the bench's).</summary>
internal sealed class DiscardedAcks : IAckSender
{
    public static readonly DiscardedAcks Instance = new();

    private DiscardedAcks()
    {
    }

    public ValueTask SendAsync(string replyTo, byte[] payload, CancellationToken cancellationToken) => default;

    public ValueTask ConfirmAsync(string replyTo, byte[] payload, CancellationToken cancellationToken) => default;
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

    /// <summary>
    /// A message as a pull consumer of <paramref name="stream"/> would deliver it, built in-process where no server
    /// did (the warm-up's, the bench's): its headers written as the block the server sends, its reply subject naming
    /// its first delivery as the server names it (<c>$JS.ACK.stream.consumer.delivered.sseq.cseq.time.pending</c>,
    /// which is where a reader finds its delivery), and its acknowledgements going nowhere.
    /// </summary>
    public static JetStreamMessage InProcess(string subject, string stream, string consumer, ulong sequence, DateTimeOffset stored, NatsHeaders headers, byte[] data)
    {
        var block = new StringBuilder("NATS/1.0\r\n");
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                block.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }
        block.Append("\r\n");
        var reply = string.Create(CultureInfo.InvariantCulture, $"$JS.ACK.{stream}.{consumer}.1.{sequence}.{sequence}.{stored.ToUnixTimeMilliseconds() * 1_000_000}.0");
        return new JetStreamMessage(DiscardedAcks.Instance, subject, reply, Encoding.ASCII.GetBytes(block.ToString()), data, Encoding.ASCII);
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
/// shared strings. The other values are read from the message's block when first asked for: the ones
/// nobody reads (a message id, Runner's internal headers behind an event's visible ones) are never
/// made, and numbers can be read from their bytes (<see cref="TryGetNumber"/>).
/// </summary>
internal sealed class MessageHeaderList : HeaderView, IIndexedHeaders
{
    public static readonly MessageHeaderList Empty = new([], [], 0, Encoding.ASCII);

    private static readonly byte[] s_version = "NATS/1.0"u8.ToArray();

    private static readonly HashSet<string> s_repeating = new(StringComparer.OrdinalIgnoreCase)
    {
        EventHeaders.TenantId, EventHeaders.Saga, EventHeaders.Partition, EventHeaders.OriginStream, EventHeaders.ContentType,
    };

    /// <summary>The block the values are read from when first asked for.</summary>
    private readonly byte[] _block;
    private readonly Entry[] _entries;
    private readonly int _count;
    private readonly Encoding _encoding;

    private MessageHeaderList(byte[] block, Entry[] entries, int count, Encoding encoding)
    {
        _block = block;
        _entries = entries;
        _count = count;
        _encoding = encoding;
    }

    /// <summary>One header: its name, where its value lies in the block, and its value once made.</summary>
    private struct Entry
    {
        public string Name;
        public int Start;
        public int Length;
        public string? Value;
    }

    /// <summary>How many headers (one per name).</summary>
    public int Length => _count;

    /// <summary>The name of the <paramref name="index"/>th header, in the order they came.</summary>
    public string NameAt(int index) => _entries[Checked(index)].Name;

    /// <summary>The value of the <paramref name="index"/>th header, made now if not yet (the same string afterwards).</summary>
    public string ValueAt(int index)
    {
        ref var entry = ref _entries[Checked(index)];
        return entry.Value ??= Text(_block.AsSpan(entry.Start, entry.Length), _encoding, share: s_repeating.Contains(entry.Name));
    }

    /// <summary>Whether the value of the <paramref name="index"/>th header has been made (for tests).</summary>
    internal bool IsMade(int index) => _entries[index].Value is not null;

    public override bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        var index = IndexOf(_entries, _count, key);
        value = index < 0 ? null : ValueAt(index);
        return index >= 0;
    }

    /// <summary>
    /// Reads the header <paramref name="key"/> as an integer in <paramref name="style"/>, as
    /// <c>T.TryParse(text, style, InvariantCulture, out value)</c> reads its text, from its bytes when
    /// its text has not been made.
    /// </summary>
    public bool TryGetNumber<T>(string key, NumberStyles style, out T value) where T : struct, IBinaryInteger<T>
    {
        var index = IndexOf(_entries, _count, key);
        if (index < 0)
        {
            value = T.Zero;
            return false;
        }
        ref var entry = ref _entries[index];
        return entry.Value is null && System.Text.Ascii.IsValid(_block.AsSpan(entry.Start, entry.Length))
            ? T.TryParse(_block.AsSpan(entry.Start, entry.Length), style, CultureInfo.InvariantCulture, out value)
            : T.TryParse(ValueAt(index), style, CultureInfo.InvariantCulture, out value);
    }

    public override IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        for (var i = 0; i < _count; i++)
        {
            yield return new KeyValuePair<string, string>(_entries[i].Name, ValueAt(i));
        }
    }

    /// <summary>The entries array has room for every line: past <see cref="Length"/> is no header.</summary>
    private int Checked(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _count);
        return index;
    }

    /// <summary>Where the header <paramref name="name"/> is among the first <paramref name="count"/> entries; -1 when it is not.</summary>
    private static int IndexOf(Entry[] entries, int count, string name)
    {
        for (var i = 0; i < count; i++)
        {
            if (string.Equals(entries[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>
    /// Reads a header block as the NATS client does (<c>NATS/1.0</c> then <c>Name: value</c> lines, the
    /// value's surrounding spaces and tabs left out, each decoded with <paramref name="encoding"/>); throws a
    /// <see cref="FormatException"/> for a block the client would refuse. The list keeps the block and makes
    /// each value when first asked for (the block must not change afterwards).
    /// </summary>
    public static MessageHeaderList Parse(byte[]? block, Encoding encoding)
    {
        if (block is null || block.Length == 0)
        {
            return Empty;
        }
        ReadOnlySpan<byte> bytes = block;
        var end = bytes.IndexOf("\r\n"u8);
        // The version is the line's first token, as the client reads it ("NATS/1.0", or "NATS/1.0 408 Request Timeout").
        var first = bytes[..Math.Max(end, 0)];
        var space = first.IndexOf((byte)' ');
        if (end < 0 || !(space < 0 ? first : first[..space]).SequenceEqual(s_version))
        {
            throw new FormatException("header block does not start with NATS/1.0");
        }
        var at = end + 2;
        var rest = bytes[at..];
        if (!rest.IsEmpty && !rest.EndsWith("\r\n"u8))
        {
            throw new FormatException("header line without its line end");
        }
        var lines = rest.Count("\r\n"u8);
        if (lines == 0)
        {
            return Empty;
        }
        var entries = new Entry[lines];
        var count = 0;
        while (!rest.IsEmpty)
        {
            end = rest.IndexOf("\r\n"u8);
            if (end < 0)
            {
                throw new FormatException("header line without its line end");
            }
            var line = rest[..end];
            var lineAt = at;
            rest = rest[(end + 2)..];
            at += end + 2;
            if (line.IsEmpty)
            {
                continue;
            }
            var colon = line.IndexOfAny((byte)':', (byte)' ', (byte)'\t');
            if (colon <= 0 || line[colon] != (byte)':')
            {
                throw new FormatException($"header line without a name: '{encoding.GetString(line)}'");
            }
            var raw = line[(colon + 1)..];
            var value = raw.TrimStart(" \t"u8);
            var valueAt = lineAt + colon + 1 + (raw.Length - value.Length);
            value = value.TrimEnd(" \t"u8);
            var name = Text(line[..colon], encoding, share: true);
            if (IndexOf(entries, count, name) >= 0)
            {
                continue;
            }
            entries[count++] = new Entry { Name = name, Start = valueAt, Length = value.Length };
        }
        return count == 0 ? Empty : new MessageHeaderList(block, entries, count, encoding);
    }

    /// <summary>ASCII text (what every header name and nearly every value is) shared where asked; anything else decoded as the connection decodes it.</summary>
    private static string Text(ReadOnlySpan<byte> bytes, Encoding encoding, bool share) =>
        share && System.Text.Ascii.IsValid(bytes) ? Utf8Strings.Get(bytes) : encoding.GetString(bytes);
}
