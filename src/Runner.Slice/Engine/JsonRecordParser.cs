using System.Text.Json;

namespace Runner.Slice.Engine;

/// <summary>
/// Reads one JSON object into a record: field names resolved to slots (the previous record's order
/// is tried first, so same-shaped records do no hashing), values kept as raw bytes.
/// </summary>
internal sealed class JsonRecordParser
{
    private static readonly JsonReaderOptions s_options = new() { MaxDepth = 64 };
    private int[] _predicted = [];
    private byte[] _name = new byte[256];

    /// <summary>Fills <paramref name="record"/> from <paramref name="data"/> (which starts at <paramref name="start"/> in the record's buffer); returns the problem, or null.</summary>
    public string? Parse(SliceRecord record, ReadOnlySpan<byte> data, int start, FieldTable fields, out bool notObject)
    {
        notObject = false;
        var reader = new Utf8JsonReader(data, s_options);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            notObject = true;
            return $"the line is a JSON {Describe(reader.TokenType)}, not an object";
        }
        var position = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var slot = Resolve(ref reader, position++, fields);
            reader.Read();
            var tokenStart = (int)reader.TokenStartIndex;
            RawKind kind;
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    kind = RawKind.JsonString;
                    break;
                case JsonTokenType.Number:
                    kind = RawKind.JsonNumber;
                    break;
                case JsonTokenType.True:
                    kind = RawKind.JsonTrue;
                    break;
                case JsonTokenType.False:
                    kind = RawKind.JsonFalse;
                    break;
                case JsonTokenType.Null:
                    kind = RawKind.JsonNull;
                    break;
                case JsonTokenType.StartObject:
                    reader.Skip();
                    kind = RawKind.JsonObject;
                    break;
                default:
                    reader.Skip();
                    kind = RawKind.JsonArray;
                    break;
            }
            record.AddRaw(slot, start + tokenStart, (int)reader.BytesConsumed - tokenStart, kind, kind == RawKind.JsonString && reader.ValueIsEscaped);
        }
        if (reader.Read())
        {
            return "unexpected content after the object";
        }
        return null;
    }

    private int Resolve(ref Utf8JsonReader reader, int position, FieldTable fields)
    {
        ReadOnlySpan<byte> name;
        if (reader.ValueIsEscaped)
        {
            if (_name.Length < reader.ValueSpan.Length)
            {
                _name = new byte[reader.ValueSpan.Length * 2];
            }
            name = _name.AsSpan(0, reader.CopyString(_name));
        }
        else
        {
            name = reader.ValueSpan;
        }
        if (position < _predicted.Length)
        {
            var predicted = _predicted[position];
            if (predicted >= 0 && fields[predicted].Utf8.AsSpan().SequenceEqual(name))
            {
                return predicted;
            }
        }
        else
        {
            var grown = new int[Math.Max(16, position * 2)];
            grown.AsSpan().Fill(-1);
            _predicted.CopyTo(grown, 0);
            _predicted = grown;
        }
        return _predicted[position] = fields.Intern(name);
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        _ => "value",
    };
}
