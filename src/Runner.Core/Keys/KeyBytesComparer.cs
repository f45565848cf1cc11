namespace Runner.Core.Keys;

/// <summary>Store keys compared by their bytes, for sets and tables of keys (an array is never changed once it is a key).</summary>
internal sealed class KeyBytesComparer : IEqualityComparer<byte[]>
{
    public static KeyBytesComparer Instance { get; } = new();

    private KeyBytesComparer()
    {
    }

    public bool Equals(byte[]? x, byte[]? y) =>
        ReferenceEquals(x, y) || (x is not null && y is not null && x.AsSpan().SequenceEqual(y));

    public int GetHashCode(byte[] obj)
    {
        var hash = new HashCode();
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }
}
