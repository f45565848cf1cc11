using System.Text.Json.Serialization;
using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Host.Settings;
using Runner.Sagas.Ownership;

namespace Runner.Host.Operations;

/// <summary>One partition as the ownership bucket and its owner's consumer show it.</summary>
internal sealed record PartitionRow(
    [property: JsonPropertyName("partition")] int Partition,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("owner")] string? Owner,
    [property: JsonPropertyName("epoch")] long Epoch,
    [property: JsonPropertyName("checkpoint")] ulong Checkpoint,
    [property: JsonPropertyName("lag")] ulong? Lag,
    [property: JsonPropertyName("snapshot_seq")] ulong? SnapshotSeq,
    [property: JsonPropertyName("snapshot_age_s")] double? SnapshotAgeSeconds,
    [property: JsonPropertyName("snapshot_bytes")] long? SnapshotBytes);

/// <summary>A live replica: its heartbeat, and how many partitions it holds.</summary>
internal sealed record ReplicaRow(
    [property: JsonPropertyName("worker")] string Worker,
    [property: JsonPropertyName("partitions")] int Partitions,
    [property: JsonPropertyName("leaving")] bool Leaving,
    [property: JsonPropertyName("heartbeat_age_s")] double HeartbeatAgeSeconds);

/// <summary>
/// Every partition's lease (state, owner, epoch, checkpoint), its lag (messages the owner's consumer
/// has not had acknowledged yet) and its newest snapshot, then the replicas' heartbeats: read from
/// the ownership bucket of the deployment the settings name. What <c>runner partitions</c> prints
/// and <c>GET /admin/partitions</c> answers.
/// </summary>
internal sealed record PartitionTable(
    [property: JsonPropertyName("partitions")] IReadOnlyList<PartitionRow> Partitions,
    [property: JsonPropertyName("replicas")] IReadOnlyList<ReplicaRow> Replicas)
{
    /// <summary>The table, or null when no saga replica has created the ownership bucket yet.</summary>
    public static async Task<PartitionTable?> ReadAsync(INatsJSContext js, RunnerSettings settings, TimeProvider time, CancellationToken cancellationToken)
    {
        var options = settings.SagaOptions();
        var bucket = await OwnershipBucket.OpenExistingAsync(js, options.OwnershipBucket, cancellationToken);
        if (bucket is null)
        {
            return null;
        }
        var entries = (await bucket.ReadAllAsync(cancellationToken)).ToDictionary(e => e.Key, StringComparer.Ordinal);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var rows = await Task.WhenAll(Enumerable.Range(0, settings.Partitions).Select(async p =>
        {
            var lease = entries.TryGetValue(OwnershipBucket.PartitionKey(new PartitionId(p)), out var entry)
                ? OwnershipBucket.Parse(entry.Value, OwnershipJsonContext.Default.LeaseRecord)
                : null;
            var lag = lease is { State: LeaseRecord.Held }
                ? await LagAsync(js, settings.JetStream.Streams.Inbox, options.PartitionConsumer(p, lease.Epoch), cancellationToken)
                : null;
            var snapshot = lease?.Snapshots.FirstOrDefault();
            return new PartitionRow(p, lease?.State ?? "none", lease?.Owner, lease?.Epoch ?? 0, lease?.Checkpoint ?? 0, lag,
                snapshot?.Sequence, snapshot is null ? null : (nowMs - snapshot.AtMs) / 1000.0, snapshot?.Bytes);
        }));
        var replicas = entries.Values
            .Where(e => e.Key.StartsWith(OwnershipBucket.MemberPrefix, StringComparison.Ordinal))
            .Select(e => OwnershipBucket.Parse(e.Value, OwnershipJsonContext.Default.MemberRecord))
            .OfType<MemberRecord>()
            .OrderBy(m => m.Worker, StringComparer.Ordinal)
            .Select(m => new ReplicaRow(m.Worker, rows.Count(r => r.State == LeaseRecord.Held && r.Owner == m.Worker), m.Leaving, (nowMs - m.WrittenAtMs) / 1000.0))
            .ToList();
        return new PartitionTable(rows, replicas);
    }

    private static async Task<ulong?> LagAsync(INatsJSContext js, string inbox, string consumer, CancellationToken cancellationToken)
    {
        try
        {
            var info = (await js.GetConsumerAsync(inbox, consumer, cancellationToken)).Info;
            return info.NumPending + (ulong)info.NumAckPending;
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return null; // being restored, or the owner is gone
        }
    }
}
