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

    public EffectClaims? Claims { get; private set; }

    internal EffectWorkerHooks? Hooks { get; init; }

    /// <summary>Swaps in reloaded effect declarations; commands already running finish on the old ones.</summary>
    public void Swap(IReadOnlyList<EffectManifest> effects) => _effects = Index(effects);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await StreamTopology.EnsureAsync(_js, _options.JetStream, _loggers.CreateLogger(typeof(StreamTopology)), cancellationToken);
        Claims = await EffectClaims.OpenAsync(_js, _claimOptions, _time, cancellationToken);
        _stop = new CancellationTokenSource();
        _abort = new CancellationTokenSource();
        var logger = _loggers.CreateLogger<EffectRuntime>();
        var workerLogger = _loggers.CreateLogger<EffectWorker>();
        var workers = new List<EffectWorker>();
        foreach (var effect in _effects.Values.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (!_executor.Supports(effect.Provider))
            {
                EffectsLog.ProviderMissing(logger, effect.Name, effect.Provider);
                continue;
            }
            foreach (var pool in PoolsOf(effect))
            {
                var worker = new EffectWorker(_js, Claims, _executor, Lookup, _quarantine, effect.Name, pool, _options, workerLogger, _time, _abort.Token) { Hooks = Hooks };
                workers.Add(worker);
                _loops.Add(Supervisor.Run($"effect worker {worker.Consumer}", worker.RunAsync, logger, _time, _stop.Token));
            }
        }
        Workers = workers;
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
    /// Stops pulling commands, lets the running ones finish for up to
    /// <see cref="EffectWorkerOptions.DrainTimeout"/>, then cancels the rest: they stay unacked
    /// with their claims running, and another worker takes them over when their leases end.
    /// </summary>
    public async Task StopAsync()
    {
        if (_stop is null || _abort is null)
        {
            return;
        }
        await _stop.CancelAsync();
        var all = Task.WhenAll(_loops);
        if (await Task.WhenAny(all, Task.Delay(_options.DrainTimeout, _time, CancellationToken.None)) != all)
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
