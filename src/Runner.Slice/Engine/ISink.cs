namespace Runner.Slice.Engine;

/// <summary>Where a sink stood at the last commit: what a checkpoint records and a resumed run restores.</summary>
internal sealed record SinkPosition(long Bytes, long Records, IReadOnlyList<string>? Columns);

/// <summary>
/// Where records go. Writes are buffered; <see cref="CommitAsync"/> makes everything written so
/// far durable and returns the position to checkpoint; <see cref="PublishAsync"/> makes the output
/// visible at the end of a successful run (file sinks rename their temp file), and
/// <see cref="AbandonAsync"/> discards it when the run fails.
/// </summary>
internal interface ISink : IAsyncDisposable
{
    (string Namespace, string Name) Dataset { get; }

    /// <summary>Records written so far.</summary>
    long Records { get; }

    /// <summary>Bytes written so far.</summary>
    long Bytes { get; }

    ValueTask OpenAsync(SinkPosition? resume, CancellationToken cancellationToken);

    void Write(SliceRecord record);

    /// <summary>Writes a dead-letter record (when this sink is the run's dead-letter output).</summary>
    void WriteDeadLetter(DeadLetter dead, RecordBatch batch, string runId);

    /// <summary>Hands what was written for this batch on toward the output (not yet durable).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    ValueTask<SinkPosition> CommitAsync(CancellationToken cancellationToken);

    ValueTask PublishAsync(CancellationToken cancellationToken);

    ValueTask AbandonAsync();
}
