using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Runner.Core.Events;

/// <summary>Writes an event as structured-mode CloudEvents JSON (what the router puts on the inbox).</summary>
internal static class CloudEventEncoder
{
    public static byte[] ToStructuredJson(SagaEvent evt)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + evt.DataJson.Length);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("specversion", "1.0");
            writer.WriteString("id", evt.Id);
            writer.WriteString("source", evt.Source);
            writer.WriteString("type", evt.Type);
            if (evt.CeSubject is not null)
            {
                writer.WriteString("subject", evt.CeSubject);
            }
            writer.WriteString("time", FormatTime(evt.Time));
            writer.WriteString("tenant", evt.Tenant);
            if (evt.DataContentType is not null)
            {
                writer.WriteString("datacontenttype", evt.DataContentType);
            }
            writer.WritePropertyName("data");
            writer.WriteRawValue(evt.DataJson, skipInputValidation: true);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static string FormatTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
