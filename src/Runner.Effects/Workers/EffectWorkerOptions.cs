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

    /// <summary>Largest result event (UTF-8 bytes); a larger result becomes a failed <c>result_too_large</c>.</summary>
    public int MaxResultBytes { get; init; } = 512 * 1024;

    /// <summary>
    /// Commands stored longer ago than this are quarantined as <c>stale_command</c>, not run: their
    /// claim may have expired, so a completed one could not be told apart from a new one. Keep it
    /// below the claim retention.
    /// </summary>
    public TimeSpan CommandMaxAge { get; init; } = TimeSpan.FromDays(7) - TimeSpan.FromHours(1);

    /// <summary>
    /// At most this many times an effect's <c>concurrency</c> is claimed ahead of free slots, for
    /// effects that run briefly against a claim's round trip (<see cref="Workers.ClaimAhead"/>); 0 turns it off.
    /// </summary>
    public double ClaimAhead { get; init; } = 1;

    /// <summary>On stop: how long running commands may finish before they are cancelled (left unacked, taken over later).</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one pull for commands waits at the server before it is asked again.</summary>
    public TimeSpan PullExpiry { get; init; } = PullConsumer.DefaultExpires;

    /// <summary>How often the server says a pull is still waiting (pulls unheard of for two are asked again); under half of <see cref="PullExpiry"/>.</summary>
    public TimeSpan PullHeartbeat { get; init; } = PullConsumer.DefaultHeartbeat;
}
