using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;

namespace Runner.Messaging;

/// <summary>Conversions between NATS messages and the core's plain types.</summary>
internal static class NatsMessages
{
    public static Dictionary<string, string> Headers(NatsHeaders? headers)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (headers is null)
        {
            return result;
        }
        foreach (var (key, values) in headers)
        {
            if (values.Count > 0)
            {
                result[key] = values[0]!;
            }
        }
        return result;
    }

    public static MessageOrigin Origin<T>(INatsJSMsg<T> msg)
    {
        var metadata = msg.Metadata ?? throw new InvalidOperationException("message has no JetStream metadata");
        return new MessageOrigin(metadata.Stream, metadata.Sequence.Stream, msg.Subject, metadata.Timestamp);
    }
}
