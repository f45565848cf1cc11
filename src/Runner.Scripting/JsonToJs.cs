using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Runner.Core.Json;
using Jint;
using Jint.Native;

namespace Runner.Scripting;

/// <summary>
/// Builds a script argument straight from UTF-8 JSON, giving what <c>JSON.parse</c> of the same text
/// gives (same values, same own-key order, duplicate names last-wins at the first one's place,
/// <c>-0</c> kept) without the UTF-16 copy of the text that <c>JSON.parse</c> needs, and with
/// property names kept across calls: the names of an event's and a state's fields repeat on every
/// transition, and Jint's own parser forgets them after each parse. Objects are built through
/// <see cref="JsObject.CreateFromEntries(Engine, ReadOnlySpan{KeyValuePair{string, JsValue}})"/>,
/// so objects with the same names share one hidden class as parsed ones do.
/// <para>
/// Anything this does not take on — a string with an escaped lone surrogate, nesting near the
/// engine's parse depth, an array longer than the sandbox allows, a text that is not JSON — makes
/// <see cref="TryConvert"/> return false, and the caller parses the text with Jint's parser, so an
/// edge case behaves exactly as it did. One instance per sandbox: not thread-safe.
/// </para>
/// </summary>
internal sealed class JsonToJs
{
    private const int MaxCachedLength = 64;
    private const int Slots = 512;

    private readonly Engine _engine;
    private readonly int _maxDepth;
    private readonly uint _maxArray;
    private readonly Entry[] _names = new Entry[Slots];
    private readonly Entry[] _values = new Entry[Slots];
    private readonly List<KeyValuePair<string, JsValue>> _members = new(32);
    private readonly List<JsValue> _items = new(32);

    public JsonToJs(Engine engine, int maxDepth, uint maxArray)
    {
        _engine = engine;
        // One level short of the engine's own limit: a text at the limit goes to Jint's parser,
        // which decides it as it always has.
        _maxDepth = Math.Max(1, maxDepth - 1);
        _maxArray = maxArray;
    }

    /// <summary>
    /// Converts one JSON value; false when the caller should parse the text with Jint instead.
    /// <paramref name="nested"/>: how many levels the value sits below the text Jint would parse (the
    /// event's <c>data</c> sits one below the event), which count against the depth as they would there.
    /// </summary>
    public bool TryConvert(ReadOnlySpan<byte> utf8, out JsValue value, int nested = 0)
    {
        value = JsValue.Undefined;
        if (_maxDepth - nested < 1)
        {
            return false;
        }
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = _maxDepth - nested });
        var members = _members.Count;
        var items = _items.Count;
        try
        {
            if (!reader.Read() || !TryRead(ref reader, out value))
            {
                return false;
            }
            // Trailing content after the value is not JSON.
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            // GetString on an escaped lone surrogate: JSON.parse keeps it, .NET strings from UTF-8 cannot.
            return false;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        finally
        {
            _members.RemoveRange(members, _members.Count - members);
            _items.RemoveRange(items, _items.Count - items);
        }
    }

    /// <summary>Converts UTF-16 JSON text (transcoded into a rented buffer); false as for <see cref="TryConvert(ReadOnlySpan{byte}, out JsValue, int)"/>.</summary>
    public bool TryConvert(string json, out JsValue value, int nested = 0)
    {
        var rented = ArrayPool<byte>.Shared.Rent(StrictUtf8.Encoding.GetMaxByteCount(json.Length));
        try
        {
            int length;
            try
            {
                length = StrictUtf8.Encoding.GetBytes(json, rented);
            }
            catch (EncoderFallbackException)
            {
                value = JsValue.Undefined;
                return false;
            }
            return TryConvert(rented.AsSpan(0, length), out value, nested);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>A string value, shared with earlier calls when short (strings are compared by value in JavaScript).</summary>
    public JsString String(string text) => text.Length <= MaxCachedLength ? Cached(_values, text) : new JsString(text);

    private bool TryRead(ref Utf8JsonReader reader, out JsValue value)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                return TryObject(ref reader, out value);
            case JsonTokenType.StartArray:
                return TryArray(ref reader, out value);
            case JsonTokenType.String:
                value = reader.ValueIsEscaped || reader.ValueSpan.Length > MaxCachedLength
                    ? JsString.Create(reader.GetString()!)
                    : Cached(_values, reader.ValueSpan);
                return true;
            case JsonTokenType.Number:
                value = Number(reader.ValueSpan);
                return true;
            case JsonTokenType.True:
                value = JsBoolean.True;
                return true;
            case JsonTokenType.False:
                value = JsBoolean.False;
                return true;
            case JsonTokenType.Null:
                value = JsValue.Null;
                return true;
            default:
                value = JsValue.Undefined;
                return false;
        }
    }

    private bool TryObject(ref Utf8JsonReader reader, out JsValue value)
    {
        value = JsValue.Undefined;
        var start = _members.Count;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.ValueIsEscaped || reader.ValueSpan.Length > MaxCachedLength
                ? reader.GetString()!
                : Cached(_names, reader.ValueSpan).ToString();
            if (!reader.Read() || !TryRead(ref reader, out var member))
            {
                return false;
            }
            _members.Add(new KeyValuePair<string, JsValue>(name, member));
        }
        if (reader.TokenType != JsonTokenType.EndObject)
        {
            return false;
        }
        value = JsObject.CreateFromEntries(_engine, CollectionsMarshal.AsSpan(_members)[start..]);
        _members.RemoveRange(start, _members.Count - start);
        return true;
    }

    private bool TryArray(ref Utf8JsonReader reader, out JsValue value)
    {
        value = JsValue.Undefined;
        var start = _items.Count;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!TryRead(ref reader, out var item))
            {
                return false;
            }
            _items.Add(item);
        }
        var count = _items.Count - start;
        if (reader.TokenType != JsonTokenType.EndArray || (uint)count > _maxArray)
        {
            return false;
        }
        var array = count == 0 ? [] : CollectionsMarshal.AsSpan(_items).Slice(start, count).ToArray();
        _items.RemoveRange(start, count);
        value = new JsArray(_engine, array);
        return true;
    }

    /// <summary>
    /// A JSON number's text as Jint's parser reads it: an integer other than 0 through the integer path,
    /// anything else (so <c>-0</c>, and an integer past a long, too) as a double.
    /// </summary>
    internal static JsNumber Number(ReadOnlySpan<byte> text)
    {
        if (Utf8Parser.TryParse(text, out long integer, out var consumed) && consumed == text.Length && integer != 0)
        {
            return JsNumber.Create(integer);
        }
        return new JsNumber(double.Parse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture));
    }

    private static JsString Cached(Entry[] table, string text)
    {
        Span<byte> utf8 = stackalloc byte[MaxCachedLength * 3];
        // A lone surrogate has no UTF-8 of its own to be found by: not shared.
        return System.Text.Unicode.Utf8.FromUtf16(text, utf8, out _, out var length, replaceInvalidSequences: false) == OperationStatus.Done
            ? Cached(table, utf8[..length], text)
            : new JsString(text);
    }

    /// <summary>The table's string for <paramref name="utf8"/>; made from <paramref name="text"/> (its UTF-16) or, when null, decoded strictly.</summary>
    private static JsString Cached(Entry[] table, ReadOnlySpan<byte> utf8, string? text = null)
    {
        var hash = Hash(utf8);
        ref var entry = ref table[hash & (Slots - 1)];
        if (entry.Value is not null && entry.Hash == hash && utf8.SequenceEqual(entry.Utf8))
        {
            return entry.Value;
        }
        // Strict: bytes that are not UTF-8 throw (and the text goes to Jint's parser) rather than become U+FFFD.
        var value = new JsString(text ?? StrictUtf8.Encoding.GetString(utf8));
        entry = new Entry(hash, utf8.ToArray(), value);
        return value;
    }

    private static int Hash(ReadOnlySpan<byte> utf8)
    {
        var hash = new HashCode();
        hash.AddBytes(utf8);
        return hash.ToHashCode();
    }

    private readonly record struct Entry(int Hash, byte[] Utf8, JsString Value);
}
