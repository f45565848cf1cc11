using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;

namespace Runner.Effects.Resilience;

/// <summary>
/// The resilience of one (effect, upstream), from the effect's manifest policies: the retries of a
/// command (<see cref="Retry"/>), and each call through the circuit breaker and the per-attempt
/// timeout (<see cref="Call"/>), with the <see cref="Gate"/> where calls the open circuit refuses
/// wait. The executor runs the hold between the two, so waiting spends no attempt.
/// </summary>
internal sealed class EffectPipeline(
    ResiliencePipeline<AttemptOutcome> retry,
    ResiliencePipeline<AttemptOutcome> call,
    CircuitBreakerStateProvider breaker,
    CircuitGate gate,
    TimeSpan breakDuration)
{
    public ResiliencePipeline<AttemptOutcome> Retry { get; } = retry;

    public ResiliencePipeline<AttemptOutcome> Call { get; } = call;

    public CircuitBreakerStateProvider Breaker { get; } = breaker;

    public CircuitGate Gate { get; } = gate;

    public TimeSpan BreakDuration { get; } = breakDuration;
}

/// <summary>The state of one breaker, for metrics and <c>/info</c>.</summary>
internal sealed record BreakerStatus(string Effect, string Upstream, CircuitState State, int Held, long Opened);

/// <summary>
/// One <see cref="EffectPipeline"/> per (effect, upstream). A pipeline lives as long as its
/// policies: a manifest reload that changes them gets a fresh pipeline (and a fresh, closed
/// breaker); one that does not keeps the breaker's state.
/// </summary>
internal sealed class EffectPipelines(TimeProvider time, ILogger logger)
{
    /// <summary>The command an execution is for, so the pipeline's events can name it in logs.</summary>
    public static readonly ResiliencePropertyKey<CommandMessage> CommandKey = new("runner.command");

    private readonly ConcurrentDictionary<(string Effect, string Upstream), Entry> _entries = new();
    private readonly Lock _building = new();

    public EffectPipeline For(EffectManifest effect, string upstream)
    {
        var key = (effect.Name, upstream);
        // Manifests are immutable: the same instance means the same policies.
        if (_entries.TryGetValue(key, out var entry) && ReferenceEquals(entry.Source, effect))
        {
            return entry.Pipeline;
        }
        var policies = Policies.Of(effect);
        // Built under a lock so that concurrent first calls share one breaker.
        lock (_building)
        {
            if (_entries.TryGetValue(key, out entry) && entry.Policies == policies)
            {
                entry = entry with { Source = effect };
            }
            else
            {
                entry = new Entry(effect, policies, Build(effect, upstream));
            }
            _entries[key] = entry;
            return entry.Pipeline;
        }
    }

    /// <summary>Every breaker built so far, with the commands it holds now.</summary>
    public IEnumerable<BreakerStatus> BreakerStates() =>
        _entries.Select(e => new BreakerStatus(e.Key.Effect, e.Key.Upstream, e.Value.Pipeline.Breaker.CircuitState, e.Value.Pipeline.Gate.Held, e.Value.Pipeline.Gate.Opened));

    private EffectPipeline Build(EffectManifest effect, string upstream)
    {
        var gate = new CircuitGate(time);
        var breaker = new CircuitBreakerStateProvider();
        return new EffectPipeline(BuildRetry(effect, upstream), BuildCall(effect, upstream, breaker, gate), breaker, gate,
            TimeSpan.FromMilliseconds(effect.CircuitBreaker.BreakMs));
    }

    private ResiliencePipeline<AttemptOutcome> BuildRetry(EffectManifest effect, string upstream)
    {
        var retryOn = new HashSet<string>(effect.Retry.On, StringComparer.Ordinal);
        var builder = new ResiliencePipelineBuilder<AttemptOutcome>
        {
            Name = "effect:" + effect.Name,
            InstanceName = upstream,
            TimeProvider = time,
        };
        var retry = effect.Retry;
        if (retry.MaxAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions<AttemptOutcome>
            {
                MaxRetryAttempts = retry.MaxAttempts - 1,
                BackoffType = retry.Backoff switch
                {
                    RetryPolicy.Constant => DelayBackoffType.Constant,
                    RetryPolicy.Linear => DelayBackoffType.Linear,
                    _ => DelayBackoffType.Exponential,
                },
                Delay = TimeSpan.FromMilliseconds(retry.BaseMs),
                MaxDelay = retry.MaxMs > 0 ? TimeSpan.FromMilliseconds(retry.MaxMs) : null,
                UseJitter = retry.Jitter,
                // An upstream that says when to come back (429/503 with Retry-After) is believed,
                // up to max_ms: the effect's own back-off would only hammer it sooner.
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result?.RetryAfter is { } after
                    ? (TimeSpan?)TimeSpan.FromMilliseconds(Math.Min(after.TotalMilliseconds, retry.MaxMs))
                    : null),
                // An open breaker never reaches here: the executor holds the call until the circuit
                // lets it through, so waiting for the upstream spends none of these attempts.
                ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
                {
                    { Exception: TimeoutRejectedException } => retryOn.Contains(RetryOn.Timeout),
                    { Result: { Succeeded: false, RetryClass: { } retryClass } } => retryOn.Contains(retryClass),
                    _ => false,
                }),
                OnRetry = args =>
                {
                    if (args.Context.Properties.TryGetValue(CommandKey, out var command))
                    {
                        var reason = args.Outcome.Exception?.Message ?? args.Outcome.Result?.Error?.Code ?? "failed";
                        EffectsLog.Retrying(logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, args.AttemptNumber + 1, reason, args.RetryDelay.TotalMilliseconds);
                    }
                    return default;
                },
            });
        }
        return builder.Build();
    }

    private ResiliencePipeline<AttemptOutcome> BuildCall(EffectManifest effect, string upstream, CircuitBreakerStateProvider breaker, CircuitGate gate)
    {
        var builder = new ResiliencePipelineBuilder<AttemptOutcome>
        {
            Name = "effect:" + effect.Name + ":call",
            InstanceName = upstream,
            TimeProvider = time,
        };
        var breakerPolicy = effect.CircuitBreaker;
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<AttemptOutcome>
        {
            FailureRatio = breakerPolicy.FailureRatio,
            MinimumThroughput = breakerPolicy.MinimumThroughput,
            SamplingDuration = TimeSpan.FromMilliseconds(breakerPolicy.SamplingMs),
            BreakDuration = TimeSpan.FromMilliseconds(breakerPolicy.BreakMs),
            StateProvider = breaker,
            // What says the upstream is unwell; a 4xx says the request was wrong, not the upstream.
            ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
            {
                { Exception: TimeoutRejectedException } => true,
                { Result: { Succeeded: false, RetryClass: not null } } => true,
                _ => false,
            }),
            OnOpened = args =>
            {
                gate.OnOpened();
                var reason = args.Outcome.Exception?.Message ?? args.Outcome.Result?.Error?.Message ?? "failures";
                EffectsLog.CircuitOpened(logger, effect.Name, upstream, args.BreakDuration.TotalMilliseconds, reason);
                return default;
            },
            OnHalfOpened = _ =>
            {
                EffectsLog.CircuitHalfOpened(logger, effect.Name, upstream);
                return default;
            },
            OnClosed = _ =>
            {
                gate.OnClosed();
                EffectsLog.CircuitClosed(logger, effect.Name, upstream);
                return default;
            },
        });
        builder.AddTimeout(TimeSpan.FromMilliseconds(effect.TimeoutMs));
        return builder.Build();
    }

    private sealed record Entry(EffectManifest Source, Policies Policies, EffectPipeline Pipeline);

    /// <summary>
    /// The policies a pipeline is built from, compared by value. <see cref="RetryPolicy"/> holds a set,
    /// which records compare by reference, so <c>retry.on</c> is kept here in a canonical form.
    /// </summary>
    private sealed record Policies(int MaxAttempts, string Backoff, int BaseMs, int MaxMs, bool Jitter, string On, int TimeoutMs, CircuitBreakerPolicy Breaker)
    {
        public static Policies Of(EffectManifest effect)
        {
            var retry = effect.Retry;
            var on = string.Join(',', retry.On.Order(StringComparer.Ordinal));
            return new Policies(retry.MaxAttempts, retry.Backoff, retry.BaseMs, retry.MaxMs, retry.Jitter, on, effect.TimeoutMs, effect.CircuitBreaker);
        }
    }
}
