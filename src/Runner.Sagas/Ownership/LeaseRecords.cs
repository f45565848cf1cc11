using System.Text.Json.Serialization;

namespace Runner.Sagas.Ownership;

/// <summary>
/// One lease in the ownership bucket: a partition (<c>partition.{p}</c>) or a trigger stream's
/// router (<c>router.{stream}</c>). Written only by compare-and-set on the entry's revision, so of
/// several replicas one wins, and a former owner's renewals fail once another holds it.
/// </summary>
internal sealed record LeaseRecord
{
    public const string Held = "held";
    public const string Released = "released";

    [JsonPropertyName("state")] public required string State { get; init; }
    [JsonPropertyName("owner")] public string? Owner { get; init; }

    /// <summary>The owner process's run: a restarted process with the same worker id takes its own leases back at once.</summary>
    [JsonPropertyName("incarnation")] public string? Incarnation { get; init; }

    /// <summary>Rises with every change of owner; consumers and snapshots are named by it.</summary>
    [JsonPropertyName("epoch")] public long Epoch { get; init; }

    /// <summary>The owner's lease length: others judge it by this, not by their own setting.</summary>
    [JsonPropertyName("lease_ms")] public long LeaseMs { get; init; }

    /// <summary>
    /// The owner's progress as of its last write (final on release): a partition's committed inbox
    /// checkpoint; a router's last trigger sequence routed (everything at or below it is in the
    /// inbox or quarantined), valid for the trigger stream created at <see cref="StreamCreatedMs"/>.
    /// </summary>
    [JsonPropertyName("checkpoint")] public ulong Checkpoint { get; init; }

    /// <summary>
    /// A router's trigger stream's creation time (Unix ms) its checkpoint belongs to: a stream
    /// deleted and created again starts its sequences over, and an old checkpoint must not skip them.
    /// </summary>
    [JsonPropertyName("stream_created")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long StreamCreatedMs { get; init; }

    /// <summary>Stored snapshots, newest first (at most two: the older one is the fallback).</summary>
    [JsonPropertyName("snapshots")] public IReadOnlyList<SnapshotRef> Snapshots { get; init; } = [];

    /// <summary>Manifest versions by inbox sequence: each applies from its <c>from</c> up to the next one's.</summary>
    [JsonPropertyName("versions")] public IReadOnlyList<VersionRange> Versions { get; init; } = [];

    /// <summary>The inbox below this sequence may be gone: a restore must start at or after it.</summary>
    [JsonPropertyName("purged_below")] public ulong PurgedBelow { get; init; }

    /// <summary>Wall clock of the last write, for people reading it (liveness never compares it).</summary>
    [JsonPropertyName("written_at")] public long WrittenAtMs { get; init; }
}

/// <summary>A partition snapshot stored in the snapshot object store.</summary>
internal sealed record SnapshotRef
{
    [JsonPropertyName("name")] public required string Name { get; init; }

    /// <summary>The inbox sequence it covers: every message at or below it is applied in it.</summary>
    [JsonPropertyName("seq")] public ulong Sequence { get; init; }
    [JsonPropertyName("epoch")] public long Epoch { get; init; }
    [JsonPropertyName("bytes")] public long Bytes { get; init; }
    [JsonPropertyName("records")] public long Records { get; init; }
    [JsonPropertyName("instances")] public long Instances { get; init; }
    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }
    [JsonPropertyName("at")] public long AtMs { get; init; }
}

/// <summary>From inbox sequence <see cref="From"/> on, transitions run with manifest version <see cref="Manifest"/>.</summary>
internal sealed record VersionRange
{
    [JsonPropertyName("from")] public ulong From { get; init; }
    [JsonPropertyName("manifest")] public required string Manifest { get; init; }
}

/// <summary>A replica's heartbeat (<c>member.{id}</c>): alive while its revision keeps moving.</summary>
internal sealed record MemberRecord
{
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("incarnation")] public required string Incarnation { get; init; }
    [JsonPropertyName("lease_ms")] public long LeaseMs { get; init; }

    /// <summary>Draining or stopping: others balance as if it were gone.</summary>
    [JsonPropertyName("leaving")] public bool Leaving { get; init; }
    [JsonPropertyName("written_at")] public long WrittenAtMs { get; init; }
}

/// <summary>What every replica of a deployment must agree on (<c>deployment</c>), written once.</summary>
internal sealed record DeploymentRecord
{
    [JsonPropertyName("partitions")] public int Partitions { get; init; }
    [JsonPropertyName("created_at")] public long CreatedAtMs { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(LeaseRecord))]
[JsonSerializable(typeof(MemberRecord))]
[JsonSerializable(typeof(DeploymentRecord))]
internal sealed partial class OwnershipJsonContext : JsonSerializerContext;
