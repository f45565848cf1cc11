using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;
using Runner.Effects.Providers.Slices;

namespace Runner.Effects.Resilience;

/// <summary>
/// Performs a command with the provider its effect names, through the effect's resilience pipeline,
/// and says how it ended. It never throws for a failed effect — a status code, a dead upstream, an
/// open circuit, a missing secret, a provider bug all become a failed <see cref="EffectExecution"/>.
/// Only the caller's cancellation propagates, and it wins over any failure seen so far: an
/// interrupted execution is never reported as failed (a success that completed is still returned).
/// </summary>
internal sealed class EffectExecutor : IEffectExecutor
{
    /// <summary>The <see cref="IHttpClientFactory"/> client the http and gateway providers use.</summary>
    public const string HttpClientName = HttpExchange.ClientName;

    private readonly Dictionary<string, IEffectProvider> _providers;
    private readonly ILogger _logger;

    /// <param name="providers">One per kind; a new kind of effect plugs in here.</param>
    public EffectExecutor(IEnumerable<IEffectProvider> providers, TimeProvider time, ILogger logger)
    {
        _providers = providers.ToDictionary(p => p.Kind, StringComparer.Ordinal);
        _logger = logger;
        Pipelines = new EffectPipelines(time, logger);
    }

    public EffectPipelines Pipelines { get; }

    /// <summary>
    /// Registers the client the providers use. Redirects are not followed: a side effect sent to
    /// one URL must not be replayed to another (a POST answered 302 would turn into a GET), so a
    /// 3xx is a permanent <c>http_3xx</c> failure the operator sees.
    /// </summary>
    public static IServiceCollection AddHttpClient(IServiceCollection services)
    {
        services.AddHttpClient(HttpClientName).ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false });
        return services;
    }

    public bool Supports(string providerKind) => _providers.ContainsKey(providerKind);

    /// <summary>The slice provider sizes slots by the node's capacity; other kinds by the effect's <c>concurrency</c>.</summary>
    public int SlotsFor(EffectManifest effect, string? pool) =>
        _providers.GetValueOrDefault(effect.Provider) is SliceProvider slices ? slices.Slots(effect, pool) : effect.Concurrency;

    /// <summary>The executor with the http and gateway providers (reading secrets from <paramref name="secretsDirectory"/>), and the slice and publish providers when given what they need.</summary>
    public static EffectExecutor Create(IHttpClientFactory http, string secretsDirectory, ILoggerFactory loggers, TimeProvider time, SliceProvider? slices = null, NATS.Client.JetStream.INatsJSContext? js = null)
    {
        var exchange = new HttpExchange(http, new SecretReader(secretsDirectory));
        List<IEffectProvider> providers = [new HttpProvider(exchange), new GatewayProvider(exchange)];
        if (js is not null)
        {
            providers.Add(new PublishProvider(js, time));
        }
        if (slices is not null)
        {
            providers.Add(slices);
        }
        return new EffectExecutor(providers, time, loggers.CreateLogger<EffectExecutor>());
    }

    public async ValueTask<EffectExecution> ExecuteAsync(EffectManifest effect, CommandMessage command, CancellationToken cancellationToken)
    {
        if (!_providers.TryGetValue(effect.Provider, out var provider))
        {
            return Failed(effect, command, 0, EffectErrorCodes.UnsupportedProvider, $"effect '{effect.Name}' uses provider '{effect.Provider}', which this worker does not have");
        }
        var run = new Run(provider, effect, command, _logger);
        string upstream;
        ResiliencePipeline<AttemptOutcome> pipeline;
        try
        {
            upstream = provider.Upstream(new EffectCall(effect, command, 1));
            pipeline = Pipelines.For(effect, upstream);
        }
        catch (Exception ex)
        {
            // A provider bug, or policies Polly refuses (the manifest parser should have caught those).
            EffectsLog.PrepareFailed(_logger, ex, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, provider.Kind);
            return Failed(effect, command, 0, EffectErrorCodes.ProviderError, ex.Message);
        }
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(EffectPipelines.CommandKey, command);
        try
        {
            var outcome = await pipeline.ExecuteAsync(static (context, run) => run.AttemptAsync(context.CancellationToken), context, run);
            if (outcome.Succeeded)
            {
                EffectsLog.Succeeded(_logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, run.Attempts);
                return new EffectExecution(true, outcome.ResultJson ?? "null", null, run.Attempts);
            }
            // Polly hands back the last outcome when the caller cancels between attempts: an
            // interrupted execution is not a failure to report, so the caller's cancellation wins.
            cancellationToken.ThrowIfCancellationRequested();
            var error = outcome.Error ?? new EffectError(EffectErrorCodes.ProviderError, "the attempt failed without saying why");
            EffectsLog.Failed(_logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, run.Attempts, error.Code, error.Message);
            return new EffectExecution(false, null, error, run.Attempts);
        }
        catch (Exception ex) when (cancellationToken.IsCancellationRequested)
        {
            if (ex is OperationCanceledException)
            {
                throw;
            }
            throw new OperationCanceledException("the effect execution was cancelled", ex, cancellationToken);
        }
        catch (TimeoutRejectedException)
        {
            return Failed(effect, command, run.Attempts, EffectErrorCodes.Timeout, $"{upstream} did not answer within {effect.TimeoutMs} ms");
        }
        catch (BrokenCircuitException ex)
        {
            var retryAfter = ex.RetryAfter is { } after ? $" for another {Math.Ceiling(after.TotalMilliseconds)} ms" : string.Empty;
            return Failed(effect, command, run.Attempts, EffectErrorCodes.CircuitOpen, $"the circuit to {upstream} is open{retryAfter}");
        }
        catch (Exception ex)
        {
            EffectsLog.ProviderThrew(_logger, ex, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, provider.Kind, run.Attempts);
            return Failed(effect, command, run.Attempts, EffectErrorCodes.ProviderError, ex.Message);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private EffectExecution Failed(EffectManifest effect, CommandMessage command, int attempts, string code, string message)
    {
        EffectsLog.Failed(_logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, attempts, code, message);
        return new EffectExecution(false, null, new EffectError(code, message), attempts);
    }

    /// <summary>One execution's attempts: numbers them and turns a provider's exception into a result.</summary>
    private sealed class Run(IEffectProvider provider, EffectManifest effect, CommandMessage command, ILogger logger)
    {
        private int _attempts;

        /// <summary>How many times the provider was called (an open circuit calls it no more).</summary>
        public int Attempts => Volatile.Read(ref _attempts);

        public async ValueTask<AttemptOutcome> AttemptAsync(CancellationToken cancellationToken)
        {
            var attempt = Interlocked.Increment(ref _attempts);
            try
            {
                return await provider.AttemptAsync(new EffectCall(effect, command, attempt), cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw; // the caller's cancellation, or the pipeline's timeout: both are the pipeline's to handle
            }
            catch (Exception ex)
            {
                // Permanent: retrying a bug hammers the upstream, and it says nothing about the upstream's health.
                EffectsLog.ProviderThrew(logger, ex, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, provider.Kind, attempt);
                return AttemptOutcome.Permanent(EffectErrorCodes.ProviderError, ex.Message);
            }
        }
    }
}
