using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;

namespace Runner.Messaging;

/// <summary>Conversions between NATS messages and the core's plain types.</summary>
internal static class NatsMessages
{
    /// <summary>A message's headers, first value of each, looked up case-insensitively; sized for them up front.</summary>
    public static Dictionary<string, string> Headers(NatsHeaders? headers)
    {
        if (headers is null)
        {
            return new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        }
        var result = new Dictionary<string, string>(headers.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, values) in headers)
        {
            if (values.Count > 0)
            {
                result[key] = values[0]!;
            }
        }
        return result;
    }

    /// <summary>
    /// The end-to-end headers Runner puts on what it publishes (design §2). NATS header values are
    /// ASCII on the wire, so ids that are not are percent-encoded; the body carries them as they are.
    /// </summary>
    public static NatsHeaders EndToEnd(string tenant, string correlationId, string causationId, string? traceParent)
    {
        var headers = new NatsHeaders
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

    public static MessageOrigin Origin<T>(INatsJSMsg<T> msg)
    {
        var metadata = msg.Metadata ?? throw new InvalidOperationException("message has no JetStream metadata");
        return new MessageOrigin(metadata.Stream, metadata.Sequence.Stream, msg.Subject, metadata.Timestamp);
    }
}
