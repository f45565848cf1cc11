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

    /// <summary>
    /// Never throws for a failed effect (the failure is the result); only the caller's cancellation
    /// propagates. A command held by an open circuit when <see cref="ExecutionBounds.HandBack"/>
    /// fires comes back as <see cref="EffectExecution.HandedBack"/>, not performed.
    /// </summary>
    ValueTask<EffectExecution> ExecuteAsync(EffectManifest effect, CommandMessage command, ExecutionBounds bounds, CancellationToken cancellationToken);
}

/// <summary>What ends an execution besides its attempts and the caller's cancellation.</summary>
/// <param name="QueuedAt">When the command was stored in <c>WORKFLOW_COMMANDS</c>: the effect's <c>give_up_after_ms</c> counts from here, across redeliveries and workers.</param>
/// <param name="HandBack">Fires when the worker stops taking commands (a drain): a command the open circuit holds is then handed back, so the drain does not wait for the upstream.</param>
internal readonly record struct ExecutionBounds(DateTimeOffset QueuedAt, CancellationToken HandBack);
