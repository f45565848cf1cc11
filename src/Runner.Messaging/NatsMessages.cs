using NATS.Client.Core;
using Runner.Core.Events;

namespace Runner.Messaging;

/// <summary>Conversions between NATS messages and the core's plain types.</summary>
internal static class NatsMessages
{
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
}
