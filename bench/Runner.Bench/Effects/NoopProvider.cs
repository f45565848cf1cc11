using Runner.Core.Manifests;
using Runner.Effects.Providers;

namespace Runner.Bench.Effects;

/// <summary>
/// A provider that does nothing and succeeds: what is left of a command's handling is the effect
/// worker's own work (decode, claim create, resilience pipeline, result publish, claim complete, ack).
/// </summary>
internal sealed class NoopProvider : IEffectProvider
{
    public const string ProviderKind = "noop";

    private static readonly AttemptOutcome s_done = AttemptOutcome.Success("{}");

    public string Kind => ProviderKind;

    public string Upstream(EffectCall call) => ProviderKind;

    public ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken) => ValueTask.FromResult(s_done);

    /// <summary>An effect served by this provider; everything else is the manifest default (retry, breaker, timeout).</summary>
    public static EffectManifest Effect(string name, int? concurrency)
    {
        var effect = new EffectManifest(name, ProviderKind, null, "bench (in code)", 1);
        return concurrency is { } c ? effect with { Concurrency = c } : effect;
    }
}
