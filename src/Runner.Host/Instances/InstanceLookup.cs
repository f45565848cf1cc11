using NATS.Client.Core;
using Runner.Sagas;
using Runner.Sagas.Instances;

namespace Runner.Host.Instances;

/// <summary>Finds one instance by saga and key, with or without its tenant.</summary>
internal static class InstanceLookup
{
    /// <summary>
    /// The owner's view of every instance <paramref name="saga"/>/<paramref name="key"/> (one per
    /// tenant that has it; only <paramref name="tenant"/>'s when given). Without a tenant the
    /// partition is not known, so every replica is asked for the key first.
    /// </summary>
    public static async Task<List<InstanceShowReply>> ShowAsync(INatsConnection nats, SagaRuntimeOptions options, string saga, string key, string? tenant, TimeSpan wait, CancellationToken cancellationToken)
    {
        var tenants = tenant is not null
            ? [tenant]
            : (await InstanceQueryClient.ListAsync(nats, options, new InstanceFilter { Saga = saga, Key = key }, wait, cancellationToken)).Instances.Select(i => i.Tenant).Distinct(StringComparer.Ordinal).ToList();
        var found = new List<InstanceShowReply>();
        foreach (var t in tenants)
        {
            var reply = await InstanceQueryClient.ShowAsync(nats, options, new InstanceShowRequest { Tenant = t, Saga = saga, Key = key }, wait, cancellationToken);
            if (reply is { Found: true })
            {
                found.Add(reply);
            }
        }
        return found;
    }
}
