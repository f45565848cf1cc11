using System.Globalization;
using System.Text;
using Runner.Slice.Contracts;
using Runner.Slice.Expressions;

namespace Runner.Slice.Engine;

/// <summary>
/// CSV cells as text (RFC 4180): quoting on the way out, and typing on the way in. A CSV cell has
/// no type of its own: the contract's type for the field decides (a cell that does not parse as it
/// stays text, so the contract reports the mismatch); without one, a cell that reads as an integer,
/// a number or <c>true</c>/<c>false</c> is one, and an empty cell is null.
/// </summary>
internal static class CsvText
{
    /// <summary>A cell or header as CSV bytes, quoted when it holds a comma, quote, CR or LF.</summary>
    public static byte[] Encode(string text)
    {
        if (text.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            return Encoding.UTF8.GetBytes(text);
        }
        return Encoding.UTF8.GetBytes("\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"");
    }

    public static Value Type(ReadOnlySpan<byte> cell, FieldType? type)
    {
        if (cell.IsEmpty)
        {
            return Value.Null;
        }
        switch (type)
        {
            case FieldType.String or FieldType.Timestamp:
                return Value.FromString(Encoding.UTF8.GetString(cell));
            case FieldType.Int or FieldType.Number:
                var number = SliceRecord.ParseNumber(cell);
                return number.IsError ? Value.FromString(Encoding.UTF8.GetString(cell)) : number;
            case FieldType.Bool:
                return Bool(cell) ?? Value.FromString(Encoding.UTF8.GetString(cell));
        }
        if (IsNumeric(cell))
        {
            var number = SliceRecord.ParseNumber(cell);
            if (!number.IsError)
            {
                return number;
            }
        }
        return Bool(cell) ?? Value.FromString(Encoding.UTF8.GetString(cell));
    }

    /// <summary>Writes a value as a CSV cell.</summary>
    public static void Write(Value value, OutputBuffer output)
    {
        switch (value.Kind)
        {
            case ValueKind.Null:
                return;
            case ValueKind.String:
                output.Write(Encode(value.AsString));
                return;
            case ValueKind.Integer:
                output.WriteInteger(value.AsInteger);
                return;
            case ValueKind.Double:
                output.WriteAscii(value.AsDouble.ToString("R", CultureInfo.InvariantCulture));
                return;
            case ValueKind.Bool:
                output.WriteAscii(value.AsBool ? "true" : "false");
                return;
            case ValueKind.Timestamp:
                output.WriteAscii(value.AsTimestamp.ToString("O", CultureInfo.InvariantCulture));
                return;
            default:
                return;
        }
    }

    private static bool IsNumeric(ReadOnlySpan<byte> cell)
    {
        var first = cell[0];
        return first is (byte)'-' or (byte)'+' or (byte)'.' || (first >= (byte)'0' && first <= (byte)'9');
    }

    private static Value? Bool(ReadOnlySpan<byte> cell) =>
        cell.SequenceEqual("true"u8) ? Value.True : cell.SequenceEqual("false"u8) ? Value.False : null;


    /// <summary>Writes cell bytes, quoted when they hold a comma, quote, CR or LF.</summary>
    public static void WriteCell(ReadOnlySpan<byte> cell, OutputBuffer output)
    {
        if (cell.IndexOfAny(",\"\r\n"u8) < 0)
        {
            output.Write(cell);
            return;
        }
        output.WriteByte((byte)'"');
        while (true)
        {
            var quote = cell.IndexOf((byte)'"');
            if (quote < 0)
            {
                output.Write(cell);
                break;
            }
            output.Write(cell[..(quote + 1)]);
            output.WriteByte((byte)'"');
            cell = cell[(quote + 1)..];
        }
        output.WriteByte((byte)'"');
    }
}
