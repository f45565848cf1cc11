using Runner.Core.Manifests;

namespace Runner.Effects.Providers;

/// <summary>
/// Performs one attempt of an effect. Retries, the per-attempt timeout and the circuit breaker are
/// wrapped around it by <c>EffectExecutor</c>; a new kind of effect implements
/// this interface in one file and is registered by its <see cref="Kind"/>.
/// </summary>
internal interface IEffectProvider
{
    /// <summary>The <c>provider:</c> value of the manifests it serves.</summary>
    string Kind { get; }

    /// <summary>The upstream a call goes to (e.g. the URL's host): one resilience pipeline per effect and upstream.</summary>
    string Upstream(EffectCall call);

    /// <summary>
    /// One attempt. Must not throw for an expected failure (a status code, a refused connection,
    /// a missing secret): it returns a failed outcome saying whether a retry could help.
    /// </summary>
    ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken);
}
