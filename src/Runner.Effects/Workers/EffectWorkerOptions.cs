using Runner.Messaging;

namespace Runner.Effects.Workers;

/// <summary>How effect workers consume commands.</summary>
internal sealed record EffectWorkerOptions
{
    public JetStreamSettings JetStream { get; init; } = new();

    public string ConsumerPrefix { get; init; } = "runner";

    /// <summary>Pools this worker serves besides commands without a pool; empty = each effect's own manifest pool.</summary>
    public IReadOnlyList<string> Pools { get; init; } = [];

    /// <summary>Commands larger than this are quarantined unread.</summary>
    public int MaxCommandBytes { get; init; } = 1024 * 1024;

    /// <summary>Quarantine records keep at most this much of a payload.</summary>
    public int QuarantinePayloadBytes { get; init; } = 64 * 1024;

    /// <summary>How long a fetch waits for commands before asking again (the client requires more than 1 s).</summary>
    public TimeSpan FetchExpiry { get; init; } = TimeSpan.FromSeconds(2);
}
