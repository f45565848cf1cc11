using System.Text;

namespace Runner.Core.Ids;

/// <summary>
/// Maps a saga instance to its inbox partition. The hash is FNV-1a 64 over UTF-8 bytes, so the
/// result never depends on the process, the runtime version or string hashing randomization.
/// </summary>
internal static class Partitioner
{
    private const ulong OffsetBasis = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static PartitionId PartitionOf(InstanceId instance, int partitionCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitionCount, 1);
        var hash = OffsetBasis;
        hash = Mix(hash, instance.Tenant.Value);
        hash = MixByte(hash, 0);
        hash = Mix(hash, instance.Saga.Value);
        hash = MixByte(hash, 0);
        hash = Mix(hash, instance.Key.Value);
        return new PartitionId((int)(hash % (ulong)partitionCount));
    }

    public static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        var hash = OffsetBasis;
        foreach (var b in bytes)
        {
            hash = MixByte(hash, b);
        }
        return hash;
    }

    private static ulong Mix(ulong hash, string value)
    {
        Span<byte> buffer = stackalloc byte[256];
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        var bytes = max <= buffer.Length ? buffer : new byte[max];
        var written = Encoding.UTF8.GetBytes(value, bytes);
        foreach (var b in bytes[..written])
        {
            hash = MixByte(hash, b);
        }
        return hash;
    }

    private static ulong MixByte(ulong hash, byte b) => (hash ^ b) * Prime;
}
