using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;

namespace Runner.Effects.Resilience;

internal sealed partial class EffectExecutor
{
    /// <summary>
    /// One execution: each attempt the retry pipeline asks for goes through the circuit breaker and
    /// the timeout. A call the open circuit refuses is held here, inside that one attempt, until the
    /// circuit closes or a probe may go: the provider is not called and no attempt is spent.
    /// </summary>
    private sealed class Run(
        IEffectProvider provider,
        EffectPipeline pipeline,
        EffectManifest effect,
        CommandMessage command,
        string upstream,
        CancellationToken handBack,
        CancellationToken callerToken,
        ILogger logger)
    {
        private int _attempts;
        private volatile bool _holding;
        private volatile AttemptOutcome? _last;

        /// <summary>How many times the provider was called; held calls are not.</summary>
        public int Attempts => Volatile.Read(ref _attempts);

        /// <summary>True while the open circuit holds the command (and when a limit ended such a wait).</summary>
        public bool Holding => _holding;

        /// <summary>What the last call came to.</summary>
        public AttemptOutcome? Last => _last;

        /// <param name="retryToken">Ends holds: the caller's token, or with give_up_after_ms, that limit too.</param>
        public async ValueTask<AttemptOutcome> AttemptAsync(CancellationToken retryToken)
        {
            while (true)
            {
                var nextClose = pipeline.Gate.NextClose;
                var context = ResilienceContextPool.Shared.Get(callerToken);
                Outcome<AttemptOutcome> outcome;
                try
                {
                    outcome = await pipeline.Call.ExecuteOutcomeAsync(static (context, run) => run.CallAsync(context.CancellationToken), context, this);
                }
                finally
                {
                    ResilienceContextPool.Shared.Return(context);
                }
                if (outcome.Exception is BrokenCircuitException refused)
                {
                    await HoldAsync(nextClose, refused, retryToken);
                    continue;
                }
                if (outcome.Exception is TimeoutRejectedException)
                {
                    _last = AttemptOutcome.Transient(RetryOn.Timeout, EffectErrorCodes.Timeout, $"{upstream} did not answer within {effect.TimeoutMs} ms");
                }
                outcome.ThrowIfException();
                return _last = outcome.Result!;
            }
        }

        private async Task HoldAsync(Task nextClose, BrokenCircuitException refused, CancellationToken retryToken)
        {
            if (handBack.IsCancellationRequested)
            {
                throw new HandedBackException();
            }
            if (!_holding)
            {
                EffectsLog.Held(logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, upstream, Attempts);
            }
            _holding = true;
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(retryToken, handBack);
            try
            {
                await pipeline.Gate.WaitAsync(nextClose, refused, pipeline.BreakDuration, wait.Token);
            }
            catch (OperationCanceledException) when (handBack.IsCancellationRequested && !retryToken.IsCancellationRequested)
            {
                throw new HandedBackException();
            }
            // Left set when a limit ends the wait: the execution then fails as circuit_open.
            _holding = false;
        }

        private async ValueTask<Outcome<AttemptOutcome>> CallAsync(CancellationToken cancellationToken)
        {
            var attempt = Interlocked.Increment(ref _attempts);
            try
            {
                return Outcome.FromResult(await provider.AttemptAsync(new EffectCall(effect, command, attempt), cancellationToken));
            }
            catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
            {
                return Outcome.FromException<AttemptOutcome>(ex); // the caller's cancellation, or the timeout's: both are the pipeline's to handle
            }
            catch (Exception ex)
            {
                // Permanent: retrying a bug hammers the upstream, and it says nothing about the upstream's health.
                EffectsLog.ProviderThrew(logger, ex, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, provider.Kind, attempt);
                return Outcome.FromResult(AttemptOutcome.Permanent(EffectErrorCodes.ProviderError, ex.Message));
            }
        }

        /// <summary>The worker stopped taking commands while this one was held: it goes back, not performed.</summary>
        public sealed class HandedBackException : Exception
        {
            public HandedBackException()
                : base("handed back while held by an open circuit")
            {
            }
        }
    }
}
