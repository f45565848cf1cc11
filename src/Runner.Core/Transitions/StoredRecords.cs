using System.Text.Json;
using System.Text.Json.Serialization;

namespace Runner.Core.Transitions;

/// <summary>
/// A saga instance as stored: its state, whether it is done, and its live timers. Read for nearly
/// every event, so its properties have setters, not <c>init</c>: the generated reader then fills a
/// new record through them, where init-only properties go through an argument array with a box per
/// number. Nothing changes a record once made (a transition makes the next one).
/// </summary>
internal sealed record SagaInstanceRecord
{
    [JsonPropertyName("state")] public JsonElement State { get; set; }
    [JsonPropertyName("done")] public bool Done { get; set; }
    [JsonPropertyName("version")] public long Version { get; set; }
    [JsonPropertyName("timers")] public Dictionary<string, long>? Timers { get; set; }

    /// <summary>For each live timer, the instance version of the transition that set it (its generation).</summary>
    [JsonPropertyName("timer_gens")] public Dictionary<string, long>? TimerGenerations { get; set; }
    [JsonPropertyName("created_at")] public long CreatedAtMs { get; set; }
    [JsonPropertyName("updated_at")] public long UpdatedAtMs { get; set; }
    [JsonPropertyName("last_event")] public string? LastEventId { get; set; }
    [JsonPropertyName("manifest")] public string? ManifestHash { get; set; }

    /// <summary>
    /// For a done instance, the inbox time (the stream's timestamp) of the message whose transition
    /// finished it: retention counts from here, in the log's own time (0: kept for good).
    /// </summary>
    [JsonPropertyName("closed_at")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long ClosedAtInboxMs { get; set; }

    /// <summary>Set while the instance is parked: its events are held, in order, until an operator resumes, skips or cancels.</summary>
    [JsonPropertyName("parked")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ParkedRecord? Parked { get; set; }
}

/// <summary>Why an instance is parked: the event whose transition failed, and how.</summary>
internal sealed record ParkedRecord
{
    [JsonPropertyName("event_id")] public required string EventId { get; init; }
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("inbox_seq")] public ulong InboxSequence { get; init; }
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    [JsonPropertyName("detail")] public required string Detail { get; init; }

    /// <summary>The failed message's inbox time (Unix ms).</summary>
    [JsonPropertyName("at")] public long AtMs { get; init; }
}

/// <summary>An inbox message held for a parked instance, kept whole so it can run later exactly as it came.</summary>
internal sealed record HeldMessage
{
    [JsonPropertyName("seq")] public ulong InboxSequence { get; init; }
    [JsonPropertyName("inbox_at")] public long InboxMs { get; init; }
    [JsonPropertyName("subject")] public required string Subject { get; init; }
    [JsonPropertyName("headers")] public required Dictionary<string, string> Headers { get; init; }
    [JsonPropertyName("data")] public required byte[] Data { get; init; }
}

/// <summary>
/// One step of an instance's history, as stored (written by <c>HistoryWriter</c> in the
/// transition's own LMDB transaction): what came in, which script version ran, what it decided.
/// </summary>
internal sealed record HistoryStep
{
    [JsonPropertyName("version")] public long Version { get; init; }
    [JsonPropertyName("event_id")] public required string EventId { get; init; }
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("time")] public required string Time { get; init; }
    [JsonPropertyName("stream")] public required string Stream { get; init; }
    [JsonPropertyName("seq")] public ulong Sequence { get; init; }
    [JsonPropertyName("inbox_seq")] public ulong InboxSequence { get; init; }
    [JsonPropertyName("inbox_at")] public long InboxMs { get; init; }

    /// <summary>The content hash of the manifest version whose script ran this step.</summary>
    [JsonPropertyName("manifest")] public required string ManifestHash { get; init; }
    [JsonPropertyName("handler")] public required string Handler { get; init; }
    [JsonPropertyName("timer")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Timer { get; init; }
    [JsonPropertyName("commands")] public List<HistoryCommand> Commands { get; init; } = [];
    [JsonPropertyName("schedules")] public List<HistoryTimer> Schedules { get; init; } = [];
    [JsonPropertyName("cancel")] public List<string> Cancel { get; init; } = [];
    [JsonPropertyName("done")] public bool Done { get; init; }

    /// <summary>SHA-256 (hex, first 16 characters) of the state after the step, as the script returned it.</summary>
    [JsonPropertyName("state_hash")] public required string StateHash { get; init; }
    [JsonPropertyName("state")] public JsonElement State { get; init; }

    /// <summary>The <c>event</c> argument the script was given: a replay runs the same input.</summary>
    [JsonPropertyName("event")] public JsonElement Event { get; init; }
}

/// <summary>A command a history step issued.</summary>
internal sealed record HistoryCommand
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("effect")] public required string Effect { get; init; }
    [JsonPropertyName("pool")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Pool { get; init; }
    [JsonPropertyName("payload")] public JsonElement Payload { get; init; }
}

/// <summary>A timer a history step set.</summary>
internal sealed record HistoryTimer
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("due_ms")] public long DueMs { get; init; }
    [JsonPropertyName("deadline")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool Deadline { get; init; }
    [JsonPropertyName("payload")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Payload { get; init; }
}

/// <summary>
/// A command waiting to be published; the body on <c>WORKFLOW_COMMANDS</c> is exactly the
/// wire fields of this record (see docs/contracts.md).
/// </summary>
internal sealed record CommandMessage
{
    [JsonPropertyName("command_id")] public required string CommandId { get; init; }
    [JsonPropertyName("tenant")] public required string Tenant { get; init; }
    [JsonPropertyName("effect")] public required string Effect { get; init; }
    [JsonPropertyName("pool")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Pool { get; init; }
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("correlation_id")] public required string CorrelationId { get; init; }
    [JsonPropertyName("causation_id")] public required string CausationId { get; init; }
    [JsonPropertyName("payload")] public JsonElement Payload { get; init; }
    [JsonPropertyName("created_at")] public required string CreatedAt { get; init; }
    [JsonPropertyName("traceparent")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? TraceParent { get; init; }
}

/// <summary>A timer waiting to fire; the scheduler builds the timer event from it.</summary>
internal sealed record ScheduleRecord
{
    [JsonPropertyName("tenant")] public required string Tenant { get; init; }
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("due_ms")] public long DueMs { get; init; }

    /// <summary>The instance version of the transition that set this timer.</summary>
    [JsonPropertyName("gen")] public long Generation { get; init; }
    [JsonPropertyName("payload")] public JsonElement? Payload { get; init; }

    /// <summary>A deadline fires into <c>compensate</c> when the script has one.</summary>
    [JsonPropertyName("deadline")] public bool Deadline { get; init; }

    /// <summary>The id of the event whose transition set the timer.</summary>
    [JsonPropertyName("causation_id")] public required string CausationId { get; init; }

    /// <summary>The setting event's W3C trace context, carried onto the timer event.</summary>
    [JsonPropertyName("traceparent")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? TraceParent { get; init; }
}

/// <summary>Marks an event as seen by an instance, so a second copy is not applied again.</summary>
internal sealed record DedupeRecord
{
    public const string Applied = "applied";
    public const string IgnoredCompleted = "ignored_completed";

    /// <summary>A timer event for a timer the instance no longer has at that due time (cancelled, replaced or fired).</summary>
    public const string IgnoredStaleTimer = "ignored_stale_timer";

    /// <summary>The event a parked instance failed on, dropped by an operator's <c>skip</c>.</summary>
    public const string Skipped = "skipped";

    [JsonPropertyName("seq")] public ulong InboxSequence { get; init; }
    [JsonPropertyName("outcome")] public required string Outcome { get; init; }
    [JsonPropertyName("at")] public long AtMs { get; init; }

    /// <summary>When the marker was committed (wall clock): what retention counts from.</summary>
    [JsonPropertyName("committed_at")] public long CommittedAtMs { get; init; }
}

/// <summary>A message that could not be processed, kept with the reason and its context.</summary>
internal sealed record QuarantineRecord
{
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    [JsonPropertyName("detail")] public required string Detail { get; init; }
    [JsonPropertyName("stage")] public required string Stage { get; init; }
    [JsonPropertyName("saga")] public string? Saga { get; init; }
    [JsonPropertyName("tenant")] public string? Tenant { get; init; }
    [JsonPropertyName("key")] public string? Key { get; init; }
    [JsonPropertyName("partition")] public int? Partition { get; init; }
    [JsonPropertyName("stream")] public required string Stream { get; init; }
    [JsonPropertyName("seq")] public ulong Sequence { get; init; }
    [JsonPropertyName("subject")] public required string Subject { get; init; }
    [JsonPropertyName("headers")] public Dictionary<string, string>? Headers { get; init; }
    [JsonPropertyName("payload")] public string? Payload { get; init; }
    [JsonPropertyName("payload_encoding")] public required string PayloadEncoding { get; init; }
    [JsonPropertyName("payload_bytes")] public int PayloadBytes { get; init; }
    [JsonPropertyName("payload_truncated")] public bool PayloadTruncated { get; init; }
    [JsonPropertyName("deliveries")] public ulong Deliveries { get; init; }
    [JsonPropertyName("time")] public required string Time { get; init; }

    /// <summary>The message's instance was parked on it: it waits with the instance, and is resumed there, not requeued.</summary>
    [JsonPropertyName("parked")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool Parked { get; init; }

    /// <summary>Each time an operator put the message back, the copy it became.</summary>
    [JsonPropertyName("requeued")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<RequeueRecord>? Requeued { get; init; }
}

/// <summary>A requeued copy of a quarantined message: its new message id and where it was stored.</summary>
internal sealed record RequeueRecord
{
    [JsonPropertyName("msg_id")] public required string MsgId { get; init; }
    [JsonPropertyName("stream")] public required string Stream { get; init; }
    [JsonPropertyName("seq")] public ulong Sequence { get; init; }
    [JsonPropertyName("at")] public required string At { get; init; }
}
