using System.Globalization;
using System.Text;
using Runner.Slice.Expressions;

namespace Runner.Slice.Engine;

/// <summary>
/// Records and dead letters as bytes. A field that came in as JSON and was not changed is copied
/// byte for byte; computed values and CSV cells are encoded.
/// </summary>
internal static class RecordWriter
{
    public static void WriteJson(SliceRecord record, OutputBuffer output)
    {
        output.WriteByte((byte)'{');
        var entries = record.Entries;
        for (var i = 0; i < entries.Length; i++)
        {
            ref readonly var entry = ref entries[i];
            if (i > 0)
            {
                output.WriteByte((byte)',');
            }
            output.Write(record.Fields[entry.Slot].JsonProperty);
            switch (entry.Kind)
            {
                case RawKind.Computed:
                    output.WriteJsonValue(entry.Value);
                    break;
                case RawKind.CsvCell:
                    output.WriteJsonValue(record.Get(entry.Slot));
                    break;
                default:
                    output.Write(record.Data.AsSpan(entry.Start, entry.Length));
                    break;
            }
        }
        output.Write("}\n"u8);
    }

    public static void WriteCsvCell(SliceRecord record, int slot, OutputBuffer output)
    {
        foreach (ref readonly var entry in record.Entries)
        {
            if (entry.Slot != slot)
            {
                continue;
            }
            switch (entry.Kind)
            {
                case RawKind.CsvCell:
                    CsvText.WriteCell(record.Data.AsSpan(entry.Start, entry.Length), output);
                    return;
                case RawKind.JsonNumber or RawKind.JsonTrue or RawKind.JsonFalse:
                    output.Write(record.Data.AsSpan(entry.Start, entry.Length));
                    return;
                case RawKind.JsonObject or RawKind.JsonArray:
                    CsvText.WriteCell(record.Data.AsSpan(entry.Start, entry.Length), output);
                    return;
                default:
                    CsvText.Write(record.Get(slot), output);
                    return;
            }
        }
    }

    /// <summary>
    /// One dead-letter record: where it came from (offset, line), the stage, the field, the code and
    /// message, every violation, and the original record — as JSON when it was a JSON object, else as text.
    /// </summary>
    public static void WriteDeadLetter(DeadLetter dead, RecordBatch batch, string runId, OutputBuffer output)
    {
        output.Write("{\"run_id\":"u8);
        output.WriteJsonString(runId);
        output.Write(",\"offset\":"u8);
        output.WriteInteger(dead.Offset);
        if (dead.Line > 0)
        {
            output.Write(",\"line\":"u8);
            output.WriteInteger(dead.Line);
        }
        output.Write(",\"stage\":"u8);
        output.WriteJsonString(dead.Stage);
        output.Write(",\"field\":"u8);
        if (dead.Field is null)
        {
            output.Write("null"u8);
        }
        else
        {
            output.WriteJsonString(dead.Field);
        }
        output.Write(",\"code\":"u8);
        output.WriteJsonString(dead.Code);
        output.Write(",\"message\":"u8);
        output.WriteJsonString(dead.Message);
        if (dead.Violations is { Count: > 0 } violations)
        {
            output.Write(",\"errors\":["u8);
            for (var i = 0; i < violations.Count; i++)
            {
                if (i > 0)
                {
                    output.WriteByte((byte)',');
                }
                output.Write("{\"field\":"u8);
                output.WriteJsonString(violations[i].Field);
                output.Write(",\"code\":"u8);
                output.WriteJsonString(violations[i].Code);
                output.Write(",\"message\":"u8);
                output.WriteJsonString(violations[i].Message);
                output.WriteByte((byte)'}');
            }
            output.WriteByte((byte)']');
        }
        var raw = batch.Data.AsSpan(dead.RawStart, dead.RawLength);
        if (dead.RawIsJson)
        {
            output.Write(",\"record\":"u8);
            output.Write(raw);
        }
        else
        {
            output.Write(",\"raw\":"u8);
            output.WriteJsonString(Encoding.UTF8.GetString(raw));
        }
        if (dead.Truncated)
        {
            output.Write(",\"truncated\":true"u8);
        }
        output.Write("}\n"u8);
    }

    internal static string Format(Value value) => value.Kind switch
    {
        ValueKind.Double => value.AsDouble.ToString("R", CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };
}
