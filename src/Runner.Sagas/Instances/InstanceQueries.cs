using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Storage;

namespace Runner.Sagas.Instances;

/// <summary>What <c>instances list</c> asks for; every field optional. Times are Unix ms of the instance's last event.</summary>
internal sealed record InstanceFilter
{
    [JsonPropertyName("saga")] public string? Saga { get; init; }
    [JsonPropertyName("tenant")] public string? Tenant { get; init; }
    [JsonPropertyName("key")] public string? Key { get; init; }

    /// <summary><c>running</c>, <c>parked</c> or <c>done</c>.</summary>
    [JsonPropertyName("status")] public string? Status { get; init; }
    [JsonPropertyName("updated_before")] public long? UpdatedBeforeMs { get; init; }
    [JsonPropertyName("updated_after")] public long? UpdatedAfterMs { get; init; }
    [JsonPropertyName("limit")] public int Limit { get; init; } = 100;

    public static readonly string[] Statuses = ["running", "parked", "done"];

    /// <summary>Null when the filter is usable, else what is wrong with it.</summary>
    public string? Validate() =>
        Status is not null && !Statuses.Contains(Status, StringComparer.Ordinal) ? $"status must be one of {string.Join(", ", Statuses)}"
        : Limit is < 1 or > 10_000 ? "limit must be 1 to 10000"
        : null;

    public bool Matches(InstanceId id, SagaInstanceRecord record) =>
        (Saga is null || string.Equals(Saga, id.Saga.Value, StringComparison.Ordinal))
        && (Tenant is null || string.Equals(Tenant, id.Tenant.Value, StringComparison.Ordinal))
        && (Key is null || string.Equals(Key, id.Key.Value, StringComparison.Ordinal))
        && (Status is null || string.Equals(Status, StatusOf(record), StringComparison.Ordinal))
        && (UpdatedBeforeMs is not { } before || record.UpdatedAtMs < before)
        && (UpdatedAfterMs is not { } after || record.UpdatedAtMs >= after);

    public static string StatusOf(SagaInstanceRecord record) => record.Done ? "done" : record.Parked is not null ? "parked" : "running";
}

/// <summary>One line of <c>instances list</c>.</summary>
internal sealed record InstanceSummary
{
    [JsonPropertyName("tenant")] public required string Tenant { get; init; }
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("partition")] public int Partition { get; init; }
    [JsonPropertyName("status")] public required string Status { get; init; }
    [JsonPropertyName("version")] public long Version { get; init; }
    [JsonPropertyName("created_at")] public long CreatedAtMs { get; init; }
    [JsonPropertyName("updated_at")] public long UpdatedAtMs { get; init; }
    [JsonPropertyName("last_event")] public string? LastEventId { get; init; }
    [JsonPropertyName("manifest")] public string? ManifestHash { get; init; }
    [JsonPropertyName("timers")] public int Timers { get; init; }
}

/// <summary>A partition a replica answered for, at the epoch it holds it.</summary>
internal sealed record AnsweredPartition([property: JsonPropertyName("partition")] int Partition, [property: JsonPropertyName("epoch")] long Epoch);

/// <summary>One replica's answer to a list request: the partitions it owns and what matched in them.</summary>
internal sealed record InstanceListReply
{
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("partitions")] public List<AnsweredPartition> Partitions { get; init; } = [];
    [JsonPropertyName("instances")] public List<InstanceSummary> Instances { get; init; } = [];

    /// <summary>More matched in these partitions than the limit let through.</summary>
    [JsonPropertyName("truncated")] public bool Truncated { get; init; }
}

/// <summary>Which instance <c>instances show</c> asks for.</summary>
internal sealed record InstanceShowRequest
{
    [JsonPropertyName("tenant")] public required string Tenant { get; init; }
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
}

/// <summary>A command of the instance still in its partition's outbox (not yet published).</summary>
internal sealed record PendingCommand
{
    [JsonPropertyName("command_id")] public required string CommandId { get; init; }
    [JsonPropertyName("effect")] public required string Effect { get; init; }
    [JsonPropertyName("causation_id")] public required string CausationId { get; init; }
    [JsonPropertyName("created_at")] public required string CreatedAt { get; init; }
}

/// <summary>A message held for a parked instance, as shown.</summary>
internal sealed record HeldSummary
{
    [JsonPropertyName("inbox_seq")] public ulong InboxSequence { get; init; }
    [JsonPropertyName("subject")] public required string Subject { get; init; }
    [JsonPropertyName("event_id")] public string? EventId { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("bytes")] public int Bytes { get; init; }
}

/// <summary>The owner's answer to a show request.</summary>
internal sealed record InstanceShowReply
{
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("partition")] public int Partition { get; init; }
    [JsonPropertyName("epoch")] public long Epoch { get; init; }
    [JsonPropertyName("found")] public bool Found { get; init; }
    [JsonPropertyName("summary")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public InstanceSummary? Summary { get; init; }
    [JsonPropertyName("state")] public JsonElement? State { get; init; }

    /// <summary>Live timers: name → due time (Unix ms).</summary>
    [JsonPropertyName("timers")] public Dictionary<string, long>? Timers { get; init; }
    [JsonPropertyName("outbox")] public List<PendingCommand> Outbox { get; init; } = [];

    /// <summary>Why the instance is parked; null while it runs.</summary>
    [JsonPropertyName("parked")] public ParkedRecord? Parked { get; init; }

    /// <summary>Messages held for the parked instance, oldest first: the failed one, then what came since.</summary>
    [JsonPropertyName("held")] public List<HeldSummary> Held { get; init; } = [];

    /// <summary>The partition's checkpoint when the owner answered: a control message at or below it has been applied.</summary>
    [JsonPropertyName("checkpoint")] public ulong Checkpoint { get; init; }

    /// <summary>The kept steps, oldest first.</summary>
    [JsonPropertyName("history")] public List<HistoryStep> History { get; init; } = [];
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false)]
[JsonSerializable(typeof(InstanceFilter))]
[JsonSerializable(typeof(InstanceListReply))]
[JsonSerializable(typeof(InstanceShowRequest))]
[JsonSerializable(typeof(InstanceShowReply))]
[JsonSerializable(typeof(InstanceSummary))]
internal sealed partial class InstanceJsonContext : JsonSerializerContext;

/// <summary>Reads instances, their history and their pending outbox from this replica's store (the owner answers; see <see cref="InstanceQueryService"/>).</summary>
internal static class InstanceQueries
{
    private const int Page = 1024;

    /// <summary>Instances of <paramref name="partitions"/> that match, in key order, at most the filter's limit (truncated when more matched).</summary>
    public static (List<InstanceSummary> Instances, bool Truncated) List(LmdbStore store, IEnumerable<PartitionId> partitions, InstanceFilter filter)
    {
        var found = new List<InstanceSummary>();
        foreach (var partition in partitions)
        {
            var prefix = Snapshots.SnapshotCodec.Prefix(partition);
            byte[]? after = null;
            while (true)
            {
                var start = after;
                var page = store.Read(reader => reader.Scan(KeySpace.Saga, prefix, Page, start));
                foreach (var (key, value) in page)
                {
                    if (!TryInstance(key, out var id))
                    {
                        continue;
                    }
                    var record = JsonSerializer.Deserialize(value, CoreJsonContext.Default.SagaInstanceRecord);
                    if (record is null || !filter.Matches(id, record))
                    {
                        continue;
                    }
                    if (found.Count == filter.Limit)
                    {
                        return (found, true);
                    }
                    found.Add(Summary(partition, id, record));
                }
                if (page.Count < Page)
                {
                    break;
                }
                after = page[^1].Key;
            }
        }
        return (found, false);
    }

    /// <summary>The instance with its state, timers, kept history and pending commands; null when the store has no such instance.</summary>
    public static (InstanceSummary Summary, SagaInstanceRecord Record, List<HistoryStep> History, List<PendingCommand> Outbox, List<HeldSummary> Held)? Show(LmdbStore store, PartitionId partition, InstanceId instance)
    {
        return store.Read<(InstanceSummary, SagaInstanceRecord, List<HistoryStep>, List<PendingCommand>, List<HeldSummary>)?>(reader =>
        {
            var raw = reader.Get(KeySpace.Saga, StoreKeys.Instance(partition, instance));
            if (raw is null || JsonSerializer.Deserialize(raw, CoreJsonContext.Default.SagaInstanceRecord) is not { } record)
            {
                return null;
            }
            var history = new List<HistoryStep>();
            reader.Visit(KeySpace.History, StoreKeys.HistoryPrefix(partition, instance), (_, value) =>
            {
                if (JsonSerializer.Deserialize(value, CoreJsonContext.Default.HistoryStep) is { } step)
                {
                    history.Add(step);
                }
            });
            var outbox = new List<PendingCommand>();
            reader.Visit(KeySpace.Outbox, StoreKeys.OutboxPrefix(partition), (_, value) =>
            {
                var command = JsonSerializer.Deserialize(value, CoreJsonContext.Default.CommandMessage);
                if (command is not null && string.Equals(command.Tenant, instance.Tenant.Value, StringComparison.Ordinal)
                    && string.Equals(command.Saga, instance.Saga.Value, StringComparison.Ordinal)
                    && string.Equals(command.CorrelationId, instance.Key.Value, StringComparison.Ordinal))
                {
                    outbox.Add(new PendingCommand { CommandId = command.CommandId, Effect = command.Effect, CausationId = command.CausationId, CreatedAt = command.CreatedAt });
                }
            });
            var held = new List<HeldSummary>();
            reader.Visit(KeySpace.Held, StoreKeys.HistoryPrefix(partition, instance), (_, value) =>
            {
                if (JsonSerializer.Deserialize(value, CoreJsonContext.Default.HeldMessage) is { } message)
                {
                    held.Add(new HeldSummary
                    {
                        InboxSequence = message.InboxSequence,
                        Subject = message.Subject,
                        EventId = EventIdOf(message),
                        Type = message.Headers.GetValueOrDefault("ce-type"),
                        Bytes = message.Data.Length,
                    });
                }
            });
            return (Summary(partition, instance, record), record, history, outbox, held);
        });
    }

    /// <summary>The event id of a held message, read from its body (structured CloudEvents) or its ce-id header; null when neither says.</summary>
    private static string? EventIdOf(HeldMessage message)
    {
        if (message.Headers.TryGetValue("ce-id", out var id))
        {
            return id;
        }
        try
        {
            using var doc = JsonDocument.Parse(message.Data);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("id", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static InstanceSummary Summary(PartitionId partition, InstanceId id, SagaInstanceRecord record) => new()
    {
        Tenant = id.Tenant.Value,
        Saga = id.Saga.Value,
        Key = id.Key.Value,
        Partition = partition.Value,
        Status = InstanceFilter.StatusOf(record),
        Version = record.Version,
        CreatedAtMs = record.CreatedAtMs,
        UpdatedAtMs = record.UpdatedAtMs,
        LastEventId = record.LastEventId,
        ManifestHash = record.ManifestHash,
        Timers = record.Timers?.Count ?? 0,
    };

    /// <summary>Reads an instance key (partition␟tenant␟saga␟key) back into its id.</summary>
    private static bool TryInstance(byte[] key, out InstanceId id)
    {
        var parts = StoreKeys.Split(key);
        if (parts.Length != 4 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            id = default;
            return false;
        }
        id = new InstanceId(new TenantId(parts[1]), new SagaName(parts[2]), new CorrelationKey(parts[3]));
        return true;
    }
}
