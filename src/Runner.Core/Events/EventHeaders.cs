using System.Text;

namespace Runner.Core.Events;

/// <summary>Header names carried end to end, and the ones Runner adds on its internal inbox.</summary>
internal static class EventHeaders
{
    public const string TenantId = "tenant-id";
    public const string CorrelationId = "correlation-id";
    public const string CausationId = "causation-id";
    public const string TraceParent = "traceparent";
    public const string TraceState = "tracestate";
    public const string MsgId = "Nats-Msg-Id";

    /// <summary>CloudEvents binary mode: every attribute is a <c>ce-</c> header.</summary>
    public const string CloudEventPrefix = "ce-";
    public const string ContentType = "content-type";

    public const string Saga = "runner-saga";
    public const string Key = "runner-key";
    public const string OriginStream = "runner-origin-stream";
    public const string OriginSequence = "runner-origin-seq";
    public const string OriginSubject = "runner-origin-subject";
    public const string OriginTime = "runner-origin-time";
    public const string Partition = "runner-partition";

    /// <summary>On an operator's control message in a partition's inbox: <c>resume</c>, <c>skip</c> or <c>cancel</c> (of a parked instance).</summary>
    public const string Control = "runner-control";

    /// <summary>On a <c>reset</c> control message: the version to go back to, and the version the instance must still be at.</summary>
    public const string ResetTo = "runner-reset-to";

    public const string ResetFrom = "runner-reset-from";

    // Printable ASCII except '%'.
    private static readonly System.Buffers.SearchValues<char> s_plain = System.Buffers.SearchValues.Create(
        "!\"#$&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>
    /// Percent-encodes what a header value cannot carry as it is: NATS header values are ASCII on
    /// the wire and trimmed, so every byte of UTF-8 outside printable ASCII (non-ASCII, control
    /// characters, space) is written as <c>%XX</c>, and so is <c>%</c> itself, which keeps the
    /// encoding reversible. A printable ASCII value such as <c>timer:acme:o-1:deadline:1</c> is
    /// left exactly as it is.
    /// </summary>
    public static string Encode(string value)
    {
        if (value.AsSpan().IndexOfAnyExcept(s_plain) < 0)
        {
            return value;
        }
        var builder = new StringBuilder(value.Length + 16);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is > 0x20 and < 0x7f && b != (byte)'%')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }

    public static string Decode(string value) => Uri.UnescapeDataString(value);

    /// <summary>Headers that are Runner's own plumbing and never shown to scripts as event headers.</summary>
    public static bool IsInternal(string name) =>
        name.StartsWith("runner-", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("Nats-", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Whether a header name can be published again: printable ASCII without a colon (what the
    /// client writes). A producer's raw client can store others, which the client reads but will
    /// not write: such a header is not carried on, or the message could never be routed.
    /// </summary>
    public static bool IsWritableName(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }
        foreach (var c in name)
        {
            if (c <= ' ' || c == ':' || c >= '\u007f')
            {
                return false;
            }
        }
        return true;
    }
}
