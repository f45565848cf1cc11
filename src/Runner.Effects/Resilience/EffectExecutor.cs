using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Timeout;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;
using Runner.Effects.Providers.Slices;

namespace Runner.Effects.Resilience;

/// <summary>
/// Performs a command with the provider its effect names, through the effect's resilience pipelines,
/// and says how it ended. It never throws for a failed effect — a status code, a dead upstream, a
/// missing secret, a provider bug, a <c>give_up_after_ms</c> that passed all become a failed
/// <see cref="EffectExecution"/>. An open circuit is not a failure: the command waits for it (see
/// <see cref="CircuitGate"/>). Only the caller's cancellation propagates, and it wins over any
/// failure seen so far: an interrupted execution is never reported as failed (a success that
/// completed is still returned).
/// </summary>
internal sealed partial class EffectExecutor : IEffectExecutor
{
    /// <summary>The <see cref="IHttpClientFactory"/> client the http and gateway providers use.</summary>
    public const string HttpClientName = HttpExchange.ClientName;

    private readonly Dictionary<string, IEffectProvider> _providers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    /// <param name="providers">One per kind; a new kind of effect plugs in here.</param>
    public EffectExecutor(IEnumerable<IEffectProvider> providers, TimeProvider time, ILogger logger)
    {
        _providers = providers.ToDictionary(p => p.Kind, StringComparer.Ordinal);
        _logger = logger;
        _time = time;
        Pipelines = new EffectPipelines(time, logger);
    }

    public EffectPipelines Pipelines { get; }

    /// <summary>
    /// Registers the client the providers use. Redirects are not followed: a side effect sent to
    /// one URL must not be replayed to another (a POST answered 302 would turn into a GET), so a
    /// 3xx is a permanent <c>http_3xx</c> failure the operator sees. The factory's own request logging
    /// is left out: its services have no log provider (the effect worker logs each command's outcome
    /// itself, with its identity), so the scope and timers it set up on every request went nowhere.
    /// </summary>
    public static IServiceCollection AddHttpClient(IServiceCollection services)
    {
        services.AddHttpClient(HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false })
            .RemoveAllLoggers();
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

    /// <summary>As the worker runs a command stored just now, never handed back: for tools and tests.</summary>
    public ValueTask<EffectExecution> ExecuteAsync(EffectManifest effect, CommandMessage command, CancellationToken cancellationToken) =>
        ExecuteAsync(effect, command, new ExecutionBounds(_time.GetUtcNow(), CancellationToken.None), cancellationToken);

    public async ValueTask<EffectExecution> ExecuteAsync(EffectManifest effect, CommandMessage command, ExecutionBounds bounds, CancellationToken cancellationToken)
    {
        if (!_providers.TryGetValue(effect.Provider, out var provider))
        {
            return Failed(effect, command, 0, EffectErrorCodes.UnsupportedProvider, $"effect '{effect.Name}' uses provider '{effect.Provider}', which this worker does not have");
        }
        string upstream;
        EffectPipeline pipeline;
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
        var giveUpAt = effect.GiveUpAfterMs is { } giveUpMs ? bounds.QueuedAt.AddMilliseconds(giveUpMs) : (DateTimeOffset?)null;
        var left = giveUpAt - _time.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            return Failed(effect, command, 0, EffectErrorCodes.Expired,
                $"the command was stored at {bounds.QueuedAt:O}, more than give_up_after_ms ({effect.GiveUpAfterMs} ms) ago: nothing was sent");
        }
        // give_up_after_ms ends holds and back-offs (the retry pipeline's token), never a call in flight (the run's own token).
        using var limit = left is { } l ? new CancellationTokenSource(l, _time) : null;
        using var retryToken = limit is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, limit.Token);
        var run = new Run(provider, pipeline, effect, command, upstream, bounds.HandBack, cancellationToken, _logger);
        var context = ResilienceContextPool.Shared.Get(retryToken?.Token ?? cancellationToken);
        context.Properties.Set(EffectPipelines.CommandKey, command);
        try
        {
            var outcome = await pipeline.Retry.ExecuteAsync(static (context, run) => run.AttemptAsync(context.CancellationToken), context, run);
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
        catch (Run.HandedBackException)
        {
            EffectsLog.HandedBack(_logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, upstream, run.Attempts);
            return EffectExecution.HandBack(run.Attempts);
        }
        catch (OperationCanceledException) when (limit?.IsCancellationRequested == true)
        {
            return GaveUp(effect, command, run, upstream);
        }
        catch (TimeoutRejectedException)
        {
            return Failed(effect, command, run.Attempts, EffectErrorCodes.Timeout, $"{upstream} did not answer within {effect.TimeoutMs} ms");
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

    /// <summary>
    /// <c>give_up_after_ms</c> passed between attempts: held by the open circuit, the command fails
    /// as <c>circuit_open</c>; in a back-off, with its last attempt's error; before any attempt, as
    /// <c>expired</c>.
    /// </summary>
    private EffectExecution GaveUp(EffectManifest effect, CommandMessage command, Run run, string upstream)
    {
        var limit = $"give_up_after_ms ({effect.GiveUpAfterMs} ms) passed";
        if (run.Holding)
        {
            return Failed(effect, command, run.Attempts, EffectErrorCodes.CircuitOpen, $"the circuit to {upstream} was still open when {limit}");
        }
        if (run.Last?.Error is { } last)
        {
            return Failed(effect, command, run.Attempts, last.Code, $"{last.Message} (not retried: {limit})", last.Status);
        }
        return Failed(effect, command, run.Attempts, EffectErrorCodes.Expired, $"{limit} before the first attempt: nothing was sent");
    }

    private EffectExecution Failed(EffectManifest effect, CommandMessage command, int attempts, string code, string message, int? status = null)
    {
        EffectsLog.Failed(_logger, effect.Name, command.CommandId, command.Tenant, command.CorrelationId, attempts, code, message);
        return new EffectExecution(false, null, new EffectError(code, message, status), attempts);
    }
}
