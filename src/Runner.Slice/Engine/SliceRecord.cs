using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using Runner.Slice.Expressions;

namespace Runner.Slice.Engine;

/// <summary>How a field's value is held: raw bytes of the input (parsed only when read) or a computed value.</summary>
internal enum RawKind : byte
{
    /// <summary>A value set by a transform; <see cref="FieldEntry.Value"/> holds it.</summary>
    Computed,
    JsonString,
    JsonNumber,
    JsonTrue,
    JsonFalse,
    JsonNull,
    JsonObject,
    JsonArray,
    /// <summary>A CSV cell's unquoted text; typed when read (contract type, else inferred).</summary>
    CsvCell,
}

/// <summary>One field of a record: its slot, and its value as raw input bytes or a computed value.</summary>
internal struct FieldEntry
{
    public int Slot;
    public int Start;
    public int Length;
    public RawKind Kind;
    public bool Escaped;
    public bool Materialized;
    public Value Value;
}

/// <summary>
/// One record on its way through the stages. Fields keep the order they came in (then the order
/// transforms add them); values stay as the input's raw bytes until something reads them, so a
/// field passing through untouched is copied, never parsed. Objects are reused batch after batch.
/// </summary>
internal sealed class SliceRecord : IRecord
{
    private FieldEntry[] _fields = new FieldEntry[16];

    /// <summary>The batch's byte buffer the raw values point into.</summary>
    public byte[] Data { get; set; } = [];

    public int FieldCount { get; private set; }

    /// <summary>Where the record starts in the source (byte offset of a file line, stream sequence).</summary>
    public long Offset { get; set; }

    /// <summary>The record's line number in a file source (1-based), 0 for other sources.</summary>
    public long Line { get; set; }

    /// <summary>The record's original bytes in <see cref="Data"/>, what dead-letter records keep.</summary>
    public int RawStart { get; set; }

    public int RawLength { get; set; }

    /// <summary>Whether <see cref="Raw"/> is a JSON object (a JSONL line) rather than text.</summary>
    public bool RawIsJson { get; set; }

    /// <summary>False once a filter dropped it or it was dead-lettered: later stages and the sink skip it.</summary>
    public bool Live { get; set; }

    public FieldTable Fields { get; set; } = null!;

    public ReadOnlySpan<FieldEntry> Entries => _fields.AsSpan(0, FieldCount);

    public ReadOnlySpan<byte> Raw => Data.AsSpan(RawStart, RawLength);

    public void Reset(FieldTable fields, byte[] data)
    {
        Fields = fields;
        Data = data;
        FieldCount = 0;
        Live = true;
        RawIsJson = false;
        Offset = 0;
        Line = 0;
        RawStart = 0;
        RawLength = 0;
    }

    public void AddRaw(int slot, int start, int length, RawKind kind, bool escaped)
    {
        ref var entry = ref Append();
        entry.Slot = slot;
        entry.Start = start;
        entry.Length = length;
        entry.Kind = kind;
        entry.Escaped = escaped;
        entry.Materialized = false;
        entry.Value = default;
    }

    /// <summary>Sets a field to a computed value, in place when present, else at the end.</summary>
    public void Set(int slot, Value value)
    {
        var index = IndexOf(slot);
        ref var entry = ref index >= 0 ? ref _fields[index] : ref Append();
        entry.Slot = slot;
        entry.Kind = RawKind.Computed;
        entry.Materialized = true;
        entry.Value = value;
    }

    /// <summary>Keeps only <paramref name="slots"/>, in that order; fields the record lacks stay absent.</summary>
    public void Select(ReadOnlySpan<int> slots, ref FieldEntry[] scratch)
    {
        if (scratch.Length < slots.Length)
        {
            scratch = new FieldEntry[Math.Max(slots.Length, scratch.Length * 2)];
        }
        var kept = 0;
        foreach (var slot in slots)
        {
            var index = IndexOf(slot);
            if (index >= 0)
            {
                scratch[kept++] = _fields[index];
            }
        }
        (scratch, _fields) = (_fields, scratch);
        FieldCount = kept;
    }

    public bool Has(int slot) => IndexOf(slot) >= 0;

    public bool TryGetUtf8(int slot, out ReadOnlySpan<byte> utf8)
    {
        var index = IndexOf(slot);
        if (index >= 0)
        {
            ref readonly var entry = ref _fields[index];
            if (entry.Kind == RawKind.JsonString && !entry.Escaped)
            {
                utf8 = Data.AsSpan(entry.Start + 1, entry.Length - 2);
                return true;
            }
            if (entry.Kind == RawKind.CsvCell && entry.Length > 0 && Fields[slot].Type is Contracts.FieldType.String or Contracts.FieldType.Timestamp)
            {
                utf8 = Data.AsSpan(entry.Start, entry.Length);
                return true;
            }
        }
        utf8 = default;
        return false;
    }

    public Value Get(int slot)
    {
        var index = IndexOf(slot);
        if (index < 0)
        {
            return Value.Null;
        }
        ref var entry = ref _fields[index];
        if (!entry.Materialized)
        {
            entry.Value = Materialize(in entry);
            entry.Materialized = true;
        }
        return entry.Value;
    }

    private int IndexOf(int slot)
    {
        var fields = _fields;
        for (var i = 0; i < FieldCount; i++)
        {
            if (fields[i].Slot == slot)
            {
                return i;
            }
        }
        return -1;
    }

    private ref FieldEntry Append()
    {
        if (FieldCount == _fields.Length)
        {
            Array.Resize(ref _fields, _fields.Length * 2);
        }
        return ref _fields[FieldCount++];
    }

    private Value Materialize(in FieldEntry entry)
    {
        var raw = Data.AsSpan(entry.Start, entry.Length);
        switch (entry.Kind)
        {
            case RawKind.JsonString:
                return Value.FromString(entry.Escaped ? Unescape(raw) : Encoding.UTF8.GetString(raw[1..^1]));
            case RawKind.JsonNumber:
                return ParseNumber(raw);
            case RawKind.JsonTrue:
                return Value.True;
            case RawKind.JsonFalse:
                return Value.False;
            case RawKind.JsonNull:
                return Value.Null;
            case RawKind.JsonObject:
            case RawKind.JsonArray:
                return Value.Error(ExpressionErrorCodes.TypeError,
                    $"field '{Fields.NameOf(entry.Slot)}' is {(entry.Kind == RawKind.JsonObject ? "an object" : "an array")}; expressions and contracts read scalar fields");
            case RawKind.CsvCell:
                return CsvText.Type(raw, Fields[entry.Slot].Type);
            default:
                return entry.Value;
        }
    }

    internal static Value ParseNumber(ReadOnlySpan<byte> raw)
    {
        if (Utf8Parser.TryParse(raw, out long integer, out var used) && used == raw.Length)
        {
            return Value.FromInteger(integer);
        }
        return Utf8Parser.TryParse(raw, out double number, out used, 'G') && used == raw.Length && double.IsFinite(number)
            ? Value.FromDouble(number)
            : Value.Error(ExpressionErrorCodes.TypeError, "number out of range");
    }

    private static string Unescape(ReadOnlySpan<byte> quoted)
    {
        var reader = new Utf8JsonReader(quoted);
        reader.Read();
        return reader.GetString()!;
    }
}
