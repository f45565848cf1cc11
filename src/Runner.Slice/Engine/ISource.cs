using System.Threading.Channels;
using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>What a source needs to run: the field table, batches, where to send them, and when to stop.</summary>
internal sealed class SourceContext
{
    public required FieldTable Fields { get; init; }

    public required BatchPool Pool { get; init; }

    public required ChannelWriter<RecordBatch> Output { get; init; }

    public required BatchSpec Batch { get; init; }

    /// <summary>Cancelled when the run is asked to drain: the source sends what it has and stops.</summary>
    public required CancellationToken Drain { get; init; }

    public EventTimeTracker? EventTime { get; init; }

    public int MaxLineBytes { get; init; } = SourceLimits.DefaultMaxLineBytes;

    public StageMetrics Metrics { get; init; } = new("source");

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

internal static class SourceLimits
{
    public const int DefaultMaxLineBytes = 1024 * 1024;

    /// <summary>How much of an over-long line a dead-letter record keeps.</summary>
    public const int PreviewBytes = 1024;
}

/// <summary>
/// Where records come from. A source sends batches until its input ends (the last one marked
/// <see cref="RecordBatch.EndOfStream"/>) or the run drains (marked <see cref="RecordBatch.Drained"/>),
/// starting from the position a checkpoint gave it; it hears when batches are committed.
/// </summary>
internal interface ISource : IAsyncDisposable
{
    /// <summary>The dataset's OpenLineage identity.</summary>
    (string Namespace, string Name) Dataset { get; }

    Task RunAsync(SourceContext context, CancellationToken cancellationToken);

    /// <summary>Called once the sink committed everything up to the batch that carried <paramref name="state"/> (its <see cref="RecordBatch.SourceState"/>): acknowledge it.</summary>
    ValueTask CommittedAsync(object state, CancellationToken cancellationToken);
}
