using System.Text;
using Runner.Slice.Contracts;

namespace Runner.Slice.Engine;

/// <summary>
/// The run's field names, each with a slot. Expressions, contracts and transforms resolve names
/// to slots once when they are compiled; sources intern the names they meet in the data, looking
/// them up by their UTF-8 bytes without allocating. Slots only grow. Interning happens on the
/// source's thread and while compiling; other stages read names of slots they were handed, which
/// were published before the record that carries them.
/// </summary>
internal sealed class FieldTable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<byte[], int> _byUtf8 = new(Utf8KeyComparer.Instance);
    private readonly Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private volatile Entry[] _entries = new Entry[16];
    private int _count;

    public FieldTable()
    {
        _lookup = _byUtf8.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>A slot's name, its UTF-8 bytes, its JSON property prefix (<c>"name":</c>) and the contract type, if any.</summary>
    internal sealed record Entry(string Name, byte[] Utf8, byte[] JsonProperty, byte[] CsvHeader)
    {
        public FieldType? Type { get; set; }
    }

    public int Count => Volatile.Read(ref _count);

    public Entry this[int slot] => _entries[slot];

    public string NameOf(int slot) => _entries[slot].Name;

    /// <summary>The slot of <paramref name="name"/>, created when new.</summary>
    public int Intern(string name) => Intern(Encoding.UTF8.GetBytes(name));

    /// <summary>The slot of the field whose name is these UTF-8 bytes, created when new.</summary>
    public int Intern(ReadOnlySpan<byte> utf8)
    {
        if (_lookup.TryGetValue(utf8, out var slot))
        {
            return slot;
        }
        lock (_gate)
        {
            if (_lookup.TryGetValue(utf8, out slot))
            {
                return slot;
            }
            var bytes = utf8.ToArray();
            var name = Encoding.UTF8.GetString(bytes);
            var entry = new Entry(name, bytes, JsonPropertyOf(name), CsvText.Encode(name));
            slot = _count;
            var entries = _entries;
            if (slot == entries.Length)
            {
                Array.Resize(ref entries, entries.Length * 2);
            }
            entries[slot] = entry;
            _entries = entries;
            _byUtf8.Add(bytes, slot);
            Volatile.Write(ref _count, slot + 1);
            return slot;
        }
    }

    /// <summary>The slot of <paramref name="name"/> if the run knows it.</summary>
    public int? Find(string name) => _lookup.TryGetValue(Encoding.UTF8.GetBytes(name), out var slot) ? slot : null;

    private static byte[] JsonPropertyOf(string name)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WritePropertyName(name);
            writer.WriteNullValue();
            writer.WriteEndObject();
        }
        // {"name":null} → "name":
        return buffer.WrittenSpan[1..^5].ToArray();
    }

    private sealed class Utf8KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly Utf8KeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
