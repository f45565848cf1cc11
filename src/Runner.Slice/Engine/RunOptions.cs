namespace Runner.Slice.Engine;

/// <summary>How a run is carried out, beyond its spec.</summary>
internal sealed record RunOptions
{
    /// <summary>Batches that may wait in each channel between stages: the bound that keeps memory flat.</summary>
    public int ChannelCapacity { get; init; } = 4;

    /// <summary>How often a long run sends a RUNNING lineage event.</summary>
    public TimeSpan RunningInterval { get; init; } = TimeSpan.FromSeconds(30);

    public int MaxLineBytes { get; init; } = SourceLimits.DefaultMaxLineBytes;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where diagnostics go (the process's stderr).</summary>
    public TextWriter Log { get; init; } = TextWriter.Null;
}
