using Runner.Core.Keys;

namespace Runner.Core.Ids;

/// <summary>
/// Derives stable command ids: the same (saga, key, event id, name) gives the same id on every
/// replica and every redelivery, which is what lets JetStream and effect workers deduplicate.
/// </summary>
internal static class CommandIds
{
    public static CommandId Derive(TenantId tenant, SagaName saga, CorrelationKey key, string eventId, string name)
    {
        Span<byte> hash = stackalloc byte[32];
        JoinedUtf8.Sha256([tenant.Value, saga.Value, key.Value, eventId, name], hash);
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
        JoinedUtf8.Sha256([eventId], hash);
        return BitConverter.ToUInt64(hash[..8]);
    }
}
