using System.Text;
using System.Text.Json;

namespace Runner.Core.Events;

/// <summary>Writes an event as structured-mode CloudEvents JSON (what the router puts on the inbox).</summary>
internal static class CloudEventEncoder
{
    public static byte[] ToStructuredJson(SagaEvent evt)
    {
        return Json.ThreadJsonWriter.ToUtf8(evt, static (writer, evt) =>
        {
            WriteAttributes(writer, evt.Id, evt.Source, evt.Type, evt.Time, evt.Tenant, evt.DataContentType, evt.CeSubject);
            writer.WritePropertyName("data");
            writer.WriteRawValue(evt.DataJson, skipInputValidation: true);
            writer.WriteEndObject();
        });
    }

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

    /// <summary>Length of <c>yyyy-MM-ddTHH:mm:ss.fffZ</c>, the one shape every time is written in.</summary>
    private const int TimeLength = 24;

    /// <summary>The time in UTC as <c>yyyy-MM-ddTHH:mm:ss.fffZ</c> (milliseconds, always three digits).</summary>
    public static string FormatTime(DateTimeOffset time)
    {
        Span<byte> text = stackalloc byte[TimeLength];
        WriteTimeDigits(time, text);
        return Encoding.ASCII.GetString(text);
    }

    /// <summary>Writes <paramref name="time"/> as <see cref="FormatTime"/> does, straight into the writer (no string per call).</summary>
    public static void WriteTime(Utf8JsonWriter writer, string name, DateTimeOffset time)
    {
        Span<byte> text = stackalloc byte[TimeLength];
        WriteTimeDigits(time, text);
        writer.WriteString(name, text);
    }

    /// <summary>
    /// Digit by digit: a custom format string is parsed again on every call, which cost as much as
    /// the rest of a command's timestamps (times are written for every event, command and result).
    /// </summary>
    private static void WriteTimeDigits(DateTimeOffset time, Span<byte> text)
    {
        var utc = time.UtcDateTime;
        var (year, month, day) = utc;
        Digits(text[..4], year);
        text[4] = (byte)'-';
        Digits(text.Slice(5, 2), month);
        text[7] = (byte)'-';
        Digits(text.Slice(8, 2), day);
        text[10] = (byte)'T';
        Digits(text.Slice(11, 2), utc.Hour);
        text[13] = (byte)':';
        Digits(text.Slice(14, 2), utc.Minute);
        text[16] = (byte)':';
        Digits(text.Slice(17, 2), utc.Second);
        text[19] = (byte)'.';
        Digits(text.Slice(20, 3), utc.Millisecond);
        text[23] = (byte)'Z';
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (var i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }
}
