namespace Runner.Storage;

/// <summary>Where the store lives and how large it may grow.</summary>
internal sealed record LmdbOptions
{
    public required string Path { get; init; }

    /// <summary>Initial map size; doubled on MDB_MAP_FULL up to <see cref="MaxMapSize"/>.</summary>
    public long InitialMapSize { get; init; } = 256L * 1024 * 1024;

    public long MaxMapSize { get; init; } = 64L * 1024 * 1024 * 1024;

    public int MaxReaders { get; init; } = 512;

    /// <summary>Most write batches folded into one durable commit (group commit).</summary>
    public int MaxBatchesPerCommit { get; init; } = 512;

    /// <summary>
    /// How long the writer holds a batch that <see cref="WriteBatch.MayWait"/> for a batch someone waits on, so
    /// the two share one commit; only while such batches keep coming (one came within the window). Zero: never.
    /// </summary>
    public TimeSpan CompanyWindow { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>False only for benchmarks that want to see the cost of fsync; production keeps it true.</summary>
    public bool Durable { get; init; } = true;

    /// <summary>False: a scratch store that is not the replica's (the warm-up's) records no metrics, so its commits are not counted as the replica's.</summary>
    public bool Telemetry { get; init; } = true;
}
