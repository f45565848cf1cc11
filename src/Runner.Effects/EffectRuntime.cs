using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects.Claims;
using Runner.Effects.Workers;
using Runner.Messaging;

namespace Runner.Effects;

/// <summary>
/// The effect side of one process: a worker per declared effect (and pool) whose provider this
/// process has, sharing one claim bucket. Every worker loop restarts after an unexpected error.
/// <para>
/// Workers pull under an intake token per generation: <see cref="DrainAsync"/> cancels it and
/// waits for the running commands; <see cref="ResumeAsync"/> starts the workers again.
/// </para>
/// </summary>
internal sealed class EffectRuntime : IAsyncDisposable
{
    private readonly INatsJSContext _js;
    private readonly IEffectExecutor _executor;
    private readonly ICommandQuarantine _quarantine;
    private readonly EffectWorkerOptions _options;
    private readonly EffectClaimOptions _claimOptions;
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly List<Task> _loops = [];
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _control = new(1, 1);
    private volatile IReadOnlyDictionary<string, EffectManifest> _effects;
    private CancellationTokenSource? _stop;
    private CancellationTokenSource? _abort;

    public EffectRuntime(
        INatsJSContext js,
        IReadOnlyList<EffectManifest> effects,
        IEffectExecutor executor,
        ICommandQuarantine quarantine,
        EffectWorkerOptions options,
        EffectClaimOptions claimOptions,
        ILoggerFactory loggers,
        TimeProvider time)
    {
        _js = js;
        _executor = executor;
        _quarantine = quarantine;
        _options = options;
        _claimOptions = claimOptions;
        _loggers = loggers;
        _time = time;
        _effects = Index(effects);
    }

    public IReadOnlyList<EffectWorker> Workers { get; private set; } = [];

    /// <summary>The executor commands run through (its pipelines hold the circuit breakers).</summary>
    public IEffectExecutor Executor => _executor;

    public EffectClaims? Claims { get; private set; }

    internal EffectWorkerHooks? Hooks { get; init; }

    /// <summary>
    /// Swaps in reloaded effect declarations; commands already running finish on the old ones.
    /// An effect that had no worker gets one now (unless draining: resume starts it). Returns the
    /// effects that got workers. Workers of effects no longer declared keep running until restart
    /// and answer their commands with an <c>unknown_effect</c> failure.
    /// </summary>
    public IReadOnlyList<string> Swap(IReadOnlyList<EffectManifest> effects)
    {
        _effects = Index(effects);
        if (_stop is null || _stop.IsCancellationRequested || Claims is null)
        {
            return [];
        }
        return StartWorkers(_stop.Token);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var logger = _loggers.CreateLogger<EffectRuntime>();
        await StartupRetry.RunAsync("streams", ct => StreamTopology.EnsureAsync(_js, _options.JetStream, _loggers.CreateLogger(typeof(StreamTopology)), ct), logger, _time, cancellationToken);
        Claims = await StartupRetry.RunAsync("effect claims bucket", ct => EffectClaims.OpenAsync(_js, _claimOptions, _time, ct), logger, _time, cancellationToken);
        _stop = new CancellationTokenSource();
        _abort = new CancellationTokenSource();
        StartWorkers(_stop.Token);
    }

    /// <summary>Starts a worker for each declared effect (and pool) that has none in this generation.</summary>
    private List<string> StartWorkers(CancellationToken intake)
    {
        var logger = _loggers.CreateLogger<EffectRuntime>();
        var workerLogger = _loggers.CreateLogger<EffectWorker>();
        var started = new List<string>();
        lock (_gate)
        {
            var workers = Workers.ToList();
            foreach (var effect in _effects.Values.OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                if (!_executor.Supports(effect.Provider))
                {
                    EffectsLog.ProviderMissing(logger, effect.Name, effect.Provider);
                    continue;
                }
                foreach (var pool in PoolsOf(effect))
                {
                    if (workers.Any(w => w.Effect == effect.Name && w.Pool == pool))
                    {
                        continue;
                    }
                    var worker = new EffectWorker(_js, Claims!, _executor, Lookup, _quarantine, effect.Name, pool, _options, workerLogger, _time, _abort!.Token) { Hooks = Hooks };
                    workers.Add(worker);
                    started.Add(effect.Name);
                    _loops.Add(Supervisor.Run($"effect worker {worker.Consumer}", worker.RunAsync, logger, _time, intake));
                }
            }
            Workers = workers;
        }
        return started.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The first step of a drain, taken at once: no worker pulls another command.</summary>
    public void StopIntake()
    {
        try
        {
            _stop?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // stopped already
        }
    }

    /// <summary>
    /// Stops pulling commands and returns once every running command has finished (result
    /// published, command acked). Cancelling <paramref name="cancellationToken"/> abandons the
    /// wait; the commands go on until <see cref="StopAsync"/> aborts them.
    /// </summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            if (_stop is null)
            {
                return;
            }
            await _stop.CancelAsync();
            Task[] loops;
            lock (_gate)
            {
                loops = [.. _loops];
            }
            await Task.WhenAll(loops).WaitAsync(cancellationToken);
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Undoes a drain: a worker per effect (and pool) pulls again.</summary>
    public async Task ResumeAsync(CancellationToken cancellationToken)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            if (_stop is null || !_stop.IsCancellationRequested)
            {
                return;
            }
            Task[] loops;
            lock (_gate)
            {
                loops = [.. _loops];
                _loops.Clear();
                Workers = [];
            }
            await Task.WhenAll(loops).WaitAsync(cancellationToken);
            _stop.Dispose();
            _stop = new CancellationTokenSource();
            StartWorkers(_stop.Token);
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Commands without a pool always; plus the configured pools, or the effect's own pool when none are configured.</summary>
    private IEnumerable<string?> PoolsOf(EffectManifest effect)
    {
        yield return null;
        var pools = _options.Pools.Count > 0 ? _options.Pools : effect.Pool is null ? [] : [effect.Pool];
        foreach (var pool in pools.Distinct(StringComparer.Ordinal))
        {
            yield return pool;
        }
    }

    private EffectManifest? Lookup(string name) => _effects.GetValueOrDefault(name);

    private static Dictionary<string, EffectManifest> Index(IReadOnlyList<EffectManifest> effects) =>
        effects.ToDictionary(e => e.Name, StringComparer.Ordinal);

    /// <summary>
    /// Stops pulling commands, lets the running ones finish for up to <paramref name="grace"/>
    /// (default <see cref="EffectWorkerOptions.DrainTimeout"/>), then cancels the rest: they stay
    /// unacked with their claims running, and another worker takes them over when their leases end.
    /// </summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (_stop is null || _abort is null)
        {
            return;
        }
        await _stop.CancelAsync();
        Task all;
        lock (_gate)
        {
            all = Task.WhenAll(_loops);
        }
        if (await Task.WhenAny(all, Task.Delay(grace ?? _options.DrainTimeout, _time, CancellationToken.None)) != all)
        {
            await _abort.CancelAsync();
        }
        await all;
        _loops.Clear();
        _stop.Dispose();
        _abort.Dispose();
        _stop = null;
        _abort = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
