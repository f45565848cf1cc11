using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Runner.Core.Ids;

/// <summary>
/// Derives stable command ids: the same (saga, key, event id, name) gives the same id on every
/// replica and every redelivery, which is what lets JetStream and effect workers deduplicate.
/// </summary>
internal static class CommandIds
{
    public static CommandId Derive(TenantId tenant, SagaName saga, CorrelationKey key, string eventId, string name)
    {
        // SHA-256 of the UTF-8 of the parts joined by U+001F, written into one buffer (no joined string).
        ReadOnlySpan<string> parts = [tenant.Value, saga.Value, key.Value, eventId, name];
        var length = parts.Length - 1;
        foreach (var part in parts)
        {
            length += Encoding.UTF8.GetByteCount(part);
        }
        Span<byte> hash = stackalloc byte[32];
        var rented = length > StackBytes ? ArrayPool<byte>.Shared.Rent(length) : null;
        try
        {
            var text = rented is null ? stackalloc byte[StackBytes] : rented.AsSpan();
            var at = 0;
            for (var i = 0; i < parts.Length; i++)
            {
                if (i > 0)
                {
                    text[at++] = 0x1F;
                }
                at += Encoding.UTF8.GetBytes(parts[i], text[at..]);
            }
            SHA256.HashData(text[..at], hash);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
        // "{saga}-{first 12 bytes of the hash in lower-case hex}", made as one string.
        var total = saga.Value.Length + 1 + 24;
        Span<char> id = total <= 512 ? stackalloc char[512] : new char[total];
        saga.Value.CopyTo(id);
        id[saga.Value.Length] = '-';
        Convert.TryToHexStringLower(hash[..12], id[(saga.Value.Length + 1)..], out _);
        return new CommandId(new string(id[..total]));
    }

    /// <summary>A 64-bit seed for the script's PRNG, taken from the event id.</summary>
    public static ulong SeedFrom(string eventId)
    {
        Span<byte> hash = stackalloc byte[32];
        var length = Encoding.UTF8.GetByteCount(eventId);
        var rented = length > StackBytes ? ArrayPool<byte>.Shared.Rent(length) : null;
        try
        {
            var text = rented is null ? stackalloc byte[StackBytes] : rented.AsSpan();
            SHA256.HashData(text[..Encoding.UTF8.GetBytes(eventId, text)], hash);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
        return BitConverter.ToUInt64(hash[..8]);
    }

    /// <summary>Inputs up to this many UTF-8 bytes are hashed from the stack.</summary>
    private const int StackBytes = 1024;
}
