using System.Text;
using System.Text.Json;

namespace Runner.Core.Events;

/// <summary>Writes an event as structured-mode CloudEvents JSON (what the router puts on the inbox).</summary>
internal static class CloudEventEncoder
{
    private static readonly Action<Utf8JsonWriter, SagaEvent> s_structured = static (writer, evt) =>
    {
        WriteAttributes(writer, evt.Id, evt.Source, evt.Type, evt.Time, evt.Tenant, evt.DataContentType, evt.CeSubject);
        writer.WritePropertyName("data");
        writer.WriteRawValue(evt.Data.Span, skipInputValidation: true);
        writer.WriteEndObject();
    };

    public static byte[] ToStructuredJson(SagaEvent evt) => Json.ThreadJsonWriter.ToUtf8(evt, s_structured);

    /// <summary>As <see cref="ToStructuredJson"/>, into <paramref name="output"/>.</summary>
    public static void WriteStructuredJson(System.Buffers.IBufferWriter<byte> output, SagaEvent evt) =>
        Json.ThreadJsonWriter.WriteTo(output, evt, s_structured);

    /// <summary>
    /// Opens a structured-mode event and writes its context attributes; the caller writes
    /// <c>data</c> and closes the object.
    /// </summary>
    public static void WriteAttributes(Utf8JsonWriter writer, string id, string source, string type, DateTimeOffset time, string tenant, string? dataContentType, string? ceSubject = null)
    {
        writer.WriteStartObject();
        writer.WriteString("specversion", "1.0");
        writer.WriteString("id", id);
        writer.WriteString("source", source);
        writer.WriteString("type", type);
        if (ceSubject is not null)
        {
            writer.WriteString("subject", ceSubject);
        }
        WriteTime(writer, "time", time);
        writer.WriteString("tenant", tenant);
        if (dataContentType is not null)
        {
            writer.WriteString("datacontenttype", dataContentType);
        }
    }

    /// <summary>The time in UTC as <c>yyyy-MM-ddTHH:mm:ss.fffZ</c> (<see cref="CanonicalTime"/>).</summary>
    public static string FormatTime(DateTimeOffset time)
    {
        Span<byte> text = stackalloc byte[CanonicalTime.Length];
        CanonicalTime.Write(time, text);
        return Encoding.ASCII.GetString(text);
    }

    /// <summary>Writes <paramref name="time"/> as <see cref="FormatTime"/> does, straight into the writer (no string per call).</summary>
    public static void WriteTime(Utf8JsonWriter writer, string name, DateTimeOffset time)
    {
        Span<byte> text = stackalloc byte[CanonicalTime.Length];
        CanonicalTime.Write(time, text);
        writer.WriteString(name, text);
    }
}
