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
        var text = string.Join('\u001f', tenant.Value, saga.Value, key.Value, eventId, name);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        return new CommandId(saga.Value + "-" + Convert.ToHexStringLower(hash[..12]));
    }

    /// <summary>A 64-bit seed for the script's PRNG, taken from the event id.</summary>
    public static ulong SeedFrom(string eventId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(eventId), hash);
        return BitConverter.ToUInt64(hash[..8]);
    }
}
