namespace Runner.Slice.Specs;

/// <summary>A problem in a spec or contract file, with where it is.</summary>
internal sealed record SpecError(string File, int Line, int Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

/// <summary>OpenLineage job identity: a namespace and a name.</summary>
internal sealed record JobRef(string Namespace, string Name);

/// <summary>Who runs: the run id, its job, and the run (of a parent job) it belongs to.</summary>
internal sealed record RunIdentity(string Id, JobRef Job, string? ParentRunId, JobRef? ParentJob);

/// <summary>Where records come from or go to: a JSONL or CSV file, or a JetStream subject.</summary>
internal sealed record Endpoint(string Type, string? Path, string? Stream, string? Subject, ulong StartSequence)
{
    public const string Jsonl = "jsonl";
    public const string Csv = "csv";
    public const string JetStream = "jetstream";

    /// <summary>
    /// The contract checked here: on a source, every record it reads, before any transform; on a
    /// sink, every record it receives. Only sources and sinks have one.
    /// </summary>
    public ContractRef? Contract { get; init; }
}

/// <summary>The contract to check records against, and what to do with those that break it.</summary>
internal sealed record ContractRef(string Schema, string OnViolation, double MaxViolationRatio)
{
    public const string DeadLetter = "dead_letter";
    public const string Fail = "fail";

    /// <summary>Where the spec declares it: <c>source.contract</c>, <c>sink.contract</c>, or <c>contract</c> (the sink's, in short); messages name it so.</summary>
    public string Key { get; init; } = "contract";

    /// <summary>The line of its declaration, for errors found when its schema is loaded.</summary>
    public int Line { get; init; }

    public int Column { get; init; }
}

/// <summary>One transform stage; which properties are set depends on <see cref="Type"/>.</summary>
internal sealed record TransformSpec(string Type, int Line)
{
    public const string Filter = "filter";
    public const string Select = "select";
    public const string Map = "map";

    /// <summary><c>filter</c>: the condition a record must meet to pass.</summary>
    public string? Where { get; init; }

    /// <summary><c>select</c>: the fields kept, in this order.</summary>
    public IReadOnlyList<string> Fields { get; init; } = [];

    /// <summary><c>map</c>: fields set from expressions, in declaration order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Set { get; init; } = [];
}

/// <summary>How records are grouped on their way through the stages.</summary>
internal sealed record BatchSpec(int MaxRecords, int MaxWaitMs)
{
    public static readonly BatchSpec Default = new(4096, 200);
}

/// <summary>Event time: the field that holds it and how late a record may arrive before it is dead-lettered.</summary>
internal sealed record EventTimeSpec(string Field, long AllowedLatenessMs);

/// <summary>Where progress is recorded, and how often.</summary>
internal sealed record CheckpointSpec(string Path, int EveryBatches);

/// <summary>
/// A validated <c>slice: v1</c> spec: what one slice runs. Contracts sit on the endpoints they
/// guard (<see cref="Endpoint.Contract"/>); the top-level <c>contract</c> is parsed into the sink's.
/// </summary>
internal sealed record SliceSpec(
    RunIdentity Run,
    Endpoint Source,
    IReadOnlyList<TransformSpec> Transforms,
    Endpoint Sink,
    Endpoint? DeadLetter,
    BatchSpec Batch,
    CheckpointSpec? Checkpoint,
    string File)
{
    /// <summary>Event-time tracking; null when the run has none (no watermark, nothing is late).</summary>
    public EventTimeSpec? EventTime { get; init; }

    public const string Version = "v1";

    /// <summary>A path of the spec with <c>{run_id}</c> and <c>{job}</c> filled in.</summary>
    public string Expand(string path) => path
        .Replace("{run_id}", Run.Id, StringComparison.Ordinal)
        .Replace("{job}", Run.Job.Name, StringComparison.Ordinal);
}
