namespace Runner.Messaging;

/// <summary>Names of the JetStream streams Runner reads and writes (configurable per deployment).</summary>
internal sealed record StreamNames
{
    public string AggregateEvents { get; init; } = "AGGREGATE_EVENTS";
    public string PipelineEvents { get; init; } = "PIPELINE_EVENTS";
    public string WorkflowCommands { get; init; } = "WORKFLOW_COMMANDS";
    public string WorkflowEvents { get; init; } = "WORKFLOW_EVENTS";
    public string Lineage { get; init; } = "LINEAGE";
    public string Inbox { get; init; } = "RUNNER_INBOX";
}

/// <summary>How streams are created and how consumers behave.</summary>
internal sealed record JetStreamSettings
{
    public StreamNames Streams { get; init; } = new();
    public bool CreateStreams { get; init; } = true;
    public TimeSpan DuplicateWindow { get; init; } = TimeSpan.FromMinutes(10);
    public int Replicas { get; init; } = 1;
    public TimeSpan AckWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Refusals after which a message the server will not take is quarantined and terminated.</summary>
    public int MaxDeliver { get; init; } = 5;

    public int MaxAckPending { get; init; } = 4096;
    public int Batch { get; init; } = 256;

    /// <summary>
    /// What a router or partition consumer may have delivered and not yet acknowledged: the batch in
    /// hand and the next one, at most <see cref="MaxAckPending"/>. More in flight buys no throughput
    /// (each stage commits a batch at a time) but survives every gen0 collection, and promoting it
    /// makes each collection a costlier gen1 (bench/README, "Why every steady collection is a gen1").
    /// </summary>
    public int StageAckPending => Math.Min(MaxAckPending, 2 * Batch);
}
