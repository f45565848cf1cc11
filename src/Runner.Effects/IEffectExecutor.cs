using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;

namespace Runner.Effects;

/// <summary>Runs a command through its provider with the effect's retry, timeout and breaker.</summary>
internal interface IEffectExecutor
{
    /// <summary>True when a provider of this kind is registered; commands of other kinds are not consumed.</summary>
    bool Supports(string providerKind);

    /// <summary>Commands of the effect one worker (of <paramref name="pool"/>) runs at once: its slots.</summary>
    int SlotsFor(EffectManifest effect, string? pool) => effect.Concurrency;

    /// <summary>Never throws for a failed effect (the failure is the result); only the caller's cancellation propagates.</summary>
    ValueTask<EffectExecution> ExecuteAsync(EffectManifest effect, CommandMessage command, CancellationToken cancellationToken);
}
