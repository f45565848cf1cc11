using NATS.Client.JetStream;
using Runner.Effects.Workers;
using Runner.Sagas.Quarantine;
using Runner.Storage;

namespace Runner.Host.Service;

/// <summary>Effect workers' quarantine: the same records, in the same store, as the saga side's (stage <c>effect</c>).</summary>
internal sealed class StoreCommandQuarantine(LmdbStore store, int maxPayloadBytes, TimeProvider time) : ICommandQuarantine
{
    public async ValueTask AddAsync(Messaging.JetStreamMessage msg, string reason, string detail, string? tenant, CancellationToken cancellationToken)
    {
        var batch = new WriteBatch();
        QuarantineRecords.Add(batch, msg, "effect", reason, detail, maxPayloadBytes, time, tenant: tenant);
        await store.Writer.CommitAsync(batch, cancellationToken);
    }
}
