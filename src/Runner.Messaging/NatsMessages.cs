using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;

namespace Runner.Messaging;

/// <summary>Conversions between NATS messages and the core's plain types.</summary>
internal static class NatsMessages
{
    /// <summary>
    /// A message's headers as names and their first values, looked up case-insensitively: a view
    /// over the client's own table (a received message's headers are never changed), not a copy.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Headers(NatsHeaders? headers) =>
        headers is null || headers.Count == 0 ? s_none : new MessageHeaders(headers);

    /// <summary>A copy of a message's headers, for a record that outlives the message (a quarantine or hold record).</summary>
    public static Dictionary<string, string> CopyHeaders(NatsHeaders? headers) => CopyHeaders(Headers(headers));

    /// <summary>A copy of headers read as names and first values, for a record that outlives the message.</summary>
    public static Dictionary<string, string> CopyHeaders(IReadOnlyDictionary<string, string> headers)
    {
        var copy = new Dictionary<string, string>(headers.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            copy[name] = value;
        }
        return copy;
    }

    private static readonly MessageHeaders s_none = new(new NatsHeaders());

    /// <summary>NATS headers (case-insensitive names, each with one or more values) seen as name → first value.</summary>
    private sealed class MessageHeaders(NatsHeaders headers) : HeaderView
    {
        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out string value)
        {
            if (headers.TryGetValue(key, out var values) && values.Count > 0)
            {
                value = values[0]!;
                return true;
            }
            value = null;
            return false;
        }

        public override IEnumerator<KeyValuePair<string, string>> GetEnumerator()
        {
            foreach (var (name, values) in headers)
            {
                if (values.Count > 0)
                {
                    yield return new KeyValuePair<string, string>(name, values[0]!);
                }
            }
        }
    }

    /// <summary>
    /// The end-to-end headers Runner puts on what it publishes (design §2). NATS header values are
    /// ASCII on the wire, so ids that are not are percent-encoded; the body carries them as they are.
    /// </summary>
    public static NatsHeaders EndToEnd(string tenant, string correlationId, string causationId, string? traceParent)
    {
        // Room for the three, a traceparent and the message id a publish adds, so the table is made once.
        var headers = new NatsHeaders(5)
        {
            [EventHeaders.TenantId] = EventHeaders.Encode(tenant),
            [EventHeaders.CorrelationId] = EventHeaders.Encode(correlationId),
            [EventHeaders.CausationId] = EventHeaders.Encode(causationId),
        };
        if (traceParent is not null)
        {
            headers[EventHeaders.TraceParent] = traceParent;
        }
        return headers;
    }

    public static MessageOrigin Origin(JetStreamMessage msg) => Origin(msg, Delivery.Of(msg, out var stream), stream);

    /// <summary>The origin of a message whose delivery (and stream) were already read from it.</summary>
    public static MessageOrigin Origin(JetStreamMessage msg, Delivery? delivery, string? stream) =>
        delivery is { } read ? new MessageOrigin(stream!, read.StreamSequence, msg.Subject, read.Timestamp) : throw Delivery.Unreadable(msg.Subject, msg.ReplyTo);

    public static MessageOrigin Origin<T>(INatsJSMsg<T> msg) => Origin(msg, Delivery.Of(msg, out var stream), stream);

    /// <summary>The origin of a message whose delivery (and stream) were already read from it.</summary>
    public static MessageOrigin Origin<T>(INatsJSMsg<T> msg, Delivery? delivery, string? stream) =>
        delivery is { } read ? new MessageOrigin(stream!, read.StreamSequence, msg.Subject, read.Timestamp) : throw Delivery.Unreadable(msg);
}
