using System.Text.Json;

namespace Runner.Core.Json;

/// <summary>
/// Strings for short JSON string values that repeat from message to message (an event's
/// <c>type</c>, <c>source</c>, <c>specversion</c>, tenant): the string made for a value the last
/// time is given again, where decoding each message made its own. A fixed table, one slot per hash
/// of the value's bytes, the newest value in a slot replacing the one before, so its memory is
/// bounded whatever the values. Safe from any thread: a slot holds an immutable entry, read or
/// replaced whole.
/// </summary>
internal static class Utf8Strings
{
    /// <summary>Longer values are made each time: a long value is seldom a repeated name.</summary>
    public const int MaxBytes = 96;

    private const int Slots = 512;

    private static readonly Entry?[] s_table = new Entry?[Slots];

    /// <summary>
    /// The string value the reader is on, as <see cref="Utf8JsonReader.GetString"/> makes it (which
    /// still makes every value the table does not hold, so what it refuses is refused as before).
    /// </summary>
    public static string Get(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped || reader.HasValueSequence || reader.ValueSpan.Length > MaxBytes)
        {
            return reader.GetString()!;
        }
        return Lookup(reader.ValueSpan, out var slot) ?? Remember(slot, reader.ValueSpan, reader.GetString()!);
    }

    /// <summary>The string of valid UTF-8 <paramref name="utf8"/> (a header name, say), from the table when it holds it.</summary>
    public static string Get(ReadOnlySpan<byte> utf8) =>
        utf8.Length > MaxBytes
            ? System.Text.Encoding.UTF8.GetString(utf8)
            : Lookup(utf8, out var slot) ?? Remember(slot, utf8, System.Text.Encoding.UTF8.GetString(utf8));

    /// <summary>The string the table holds for <paramref name="utf8"/>, or null; <paramref name="slot"/> is where it goes.</summary>
    private static string? Lookup(ReadOnlySpan<byte> utf8, out int slot)
    {
        var hash = new HashCode();
        hash.AddBytes(utf8);
        slot = hash.ToHashCode() & (Slots - 1);
        var entry = Volatile.Read(ref s_table[slot]);
        return entry is not null && utf8.SequenceEqual(entry.Utf8) ? entry.Value : null;
    }

    private static string Remember(int slot, ReadOnlySpan<byte> utf8, string value)
    {
        Volatile.Write(ref s_table[slot], new Entry(utf8.ToArray(), value));
        return value;
    }

    private sealed class Entry(byte[] utf8, string value)
    {
        public byte[] Utf8 { get; } = utf8;
        public string Value { get; } = value;
    }
}
