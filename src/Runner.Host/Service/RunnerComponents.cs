using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Effects;
using Runner.Effects.Providers;
using Runner.Effects.Providers.Slices;
using Runner.Effects.Resilience;
using Runner.Slices;
using Runner.Host.Settings;
using Runner.Messaging;
using Runner.Sagas.Quarantine;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Sagas.Partitions;
using Runner.Storage;

namespace Runner.Host.Service;

/// <summary>
/// The composition root of a running Runner: NATS connection, LMDB store, manifests and the saga
/// runtime, started in dependency order and stopped in reverse.
/// </summary>
internal sealed class RunnerComponents : IAsyncDisposable
{
    private const int QuarantinePayloadBytes = 64 * 1024;

    private ServiceProvider? _services;

    private RunnerComponents(RunnerSettings settings, NatsConnection nats, LmdbStore store, ManifestSet manifests, SagaRuntime? sagas, EffectRuntime? effects, ServiceProvider? services)
    {
        Settings = settings;
        Nats = nats;
        Store = store;
        Manifests = manifests;
        Sagas = sagas;
        Effects = effects;
        _services = services;
    }

    public RunnerSettings Settings { get; }

    public NatsConnection Nats { get; }

    public LmdbStore Store { get; }

    /// <summary>The manifest version running now (replaced by <see cref="Swap"/>).</summary>
    public ManifestSet Manifests { get; private set; }

    /// <summary>
    /// How long effects still running at dispose may finish before they are cancelled; null = the
    /// effect options' drain timeout. Shutdown sets zero once its own drain deadline has passed.
    /// </summary>
    public TimeSpan? EffectGrace { get; set; }

    public SagaRuntime? Sagas { get; }

    public EffectRuntime? Effects { get; }

    /// <summary>The slice provider, when this node runs slice effects: its probed isolation capabilities.</summary>
    public SliceProvider? Slices { get; private init; }

    public static async Task<RunnerComponents> StartAsync(
        RunnerSettings settings,
        ILoggerFactory loggers,
        TimeProvider time,
        ITransitionListener? listener,
        CancellationToken cancellationToken)
    {
        var logger = loggers.CreateLogger<RunnerComponents>();
        var loaded = ManifestLoader.Load(settings.Manifests, settings.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("manifests are invalid:\n  " + string.Join("\n  ", loaded.Errors));
        }
        var manifests = loaded.Set!;
        HostLog.Starting(logger, Operations.InfoReport.Version, settings.Mode.ToString().ToLowerInvariant(),
            settings.NatsUrl, settings.DataDir, settings.Manifests, manifests.Sagas.Count, manifests.Effects.Count, manifests.Hash[..12], settings.Partitions);
        Operations.RuntimeReport.Log(logger);

        var store = new LmdbStore(settings.StoreOptions(), loggers.CreateLogger<LmdbStore>(), time);
        ServiceProvider? services = null;
        SliceProvider? slices = null;
        SagaRuntime? sagas = null;
        EffectRuntime? effects = null;
        var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner", LoggerFactory = loggers });
        try
        {
            await ConnectAsync(nats, settings.NatsUrl, logger, time, cancellationToken);
            var js = new NatsJSContext(nats);
            if (settings.Mode is RunnerMode.Saga or RunnerMode.Combined)
            {
                sagas = new SagaRuntime(js, store, manifests, settings.SagaOptions(), loggers, time, listener: listener);
                await sagas.StartAsync(cancellationToken);
            }
            if (settings.Mode is RunnerMode.Effect or RunnerMode.Combined)
            {
                services = EffectExecutor.AddHttpClient(new ServiceCollection()).BuildServiceProvider();
                slices = await StartSlicesAsync(settings, manifests, js, loggers, time, cancellationToken);
                var executor = EffectExecutor.Create(services.GetRequiredService<IHttpClientFactory>(), settings.SecretsDir, loggers, time, slices, js);
                effects = new EffectRuntime(js, manifests.Effects, executor, new StoreCommandQuarantine(store, QuarantinePayloadBytes, time),
                    settings.EffectOptions(), settings.ClaimOptions(), loggers, time);
                await effects.StartAsync(cancellationToken);
            }
            var components = new RunnerComponents(settings, nats, store, manifests, sagas, effects, services) { Slices = slices };
            components.StartQuarantineService(loggers, time);
            CompactStartupHeap(logger);
            return components;
        }
        catch
        {
            // Whatever started is stopped before what it runs on is disposed.
            if (effects is not null)
            {
                await effects.DisposeAsync();
            }
            if (slices is not null)
            {
                await slices.DisposeAsync();
            }
            if (sagas is not null)
            {
                await sagas.DisposeAsync();
            }
            if (services is not null)
            {
                await services.DisposeAsync();
            }
            await nats.DisposeAsync();
            store.Dispose();
            throw;
        }
    }

    /// <summary>The durable consumers this node reads now: role router, partition or effect.</summary>
    public List<(string Stream, string Consumer, string Role)> Consumers()
    {
        var streams = Settings.JetStream.Streams;
        var consumers = new List<(string Stream, string Consumer, string Role)>();
        if (Sagas is { } sagas)
        {
            consumers.AddRange(sagas.RouterConsumers.Select(r => (r.Stream, r.Consumer, "router")));
            consumers.AddRange(sagas.PartitionLeases.Select(l => (streams.Inbox, sagas.Options.PartitionConsumer(l.Partition!.Value.Value, l.Epoch), "partition")));
        }
        if (Effects is { } effects)
        {
            consumers.AddRange(effects.Workers.Select(w => (streams.WorkflowCommands, w.Consumer, "effect")));
        }
        return consumers;
    }

    /// <summary>
    /// Puts a validated manifest set in force in every running part: the next batch of each router
    /// and partition, and the next command of each effect worker, use it. Returns the trigger
    /// streams that got a router and the effects that got workers.
    /// </summary>
    public async Task<(IReadOnlyList<string> Routers, IReadOnlyList<string> EffectWorkers)> SwapAsync(ManifestSet manifests, CancellationToken cancellationToken)
    {
        Manifests = manifests;
        var routers = Sagas is { } sagas ? await sagas.SwapAsync(manifests, cancellationToken) : [];
        var workers = Effects?.Swap(manifests.Effects) ?? [];
        return (routers, workers);
    }

    /// <summary>
    /// The slice provider, when a manifest declares a slice effect: probes the node (logged, and
    /// kept as <see cref="SliceProvider.Capabilities"/>) and sweeps the slice cgroups a previous
    /// worker left before any command is taken.
    /// </summary>
    private static async Task<SliceProvider?> StartSlicesAsync(RunnerSettings settings, ManifestSet manifests, INatsJSContext js, ILoggerFactory loggers, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!manifests.Effects.Any(e => e.Provider == Core.Manifests.EffectManifest.SliceProvider))
        {
            return null;
        }
        var logger = loggers.CreateLogger<SliceLauncher>();
        var launcher = await SliceLauncher.StartAsync(settings.SliceOptions(), logger, time, cancellationToken);
        return new SliceProvider(launcher, new SliceCapacity(settings.SliceCpu, settings.SliceMemory), new JetStreamLineagePublisher(js),
            new SliceProviderOptions(settings.SliceBin, new SecretReader(settings.SecretsDir)), loggers.CreateLogger<SliceProvider>());
    }

    /// <summary>
    /// One full, compacting collection once everything is started, before the first events are taken: what start-up
    /// left behind (manifests parsed, scripts compiled, configuration read) is freed, and what it keeps is moved to
    /// the oldest generation. Otherwise the first collections under load copy all of it while events wait, which is
    /// what a replica meets after every deploy and failover (bench/README.md, "The start-up heap compacted once").
    /// </summary>
    private static void CompactStartupHeap(ILogger logger)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        HostLog.StartupHeapCompacted(logger, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, GC.GetTotalMemory(forceFullCollection: false) / (1024.0 * 1024.0));
    }

    /// <summary>Waits for NATS with back-off: a server that starts after Runner is normal in a stack.</summary>
    private static async Task ConnectAsync(NatsConnection nats, string url, ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await nats.ConnectAsync();
                return;
            }
            catch (NatsException ex)
            {
                HostLog.NatsUnavailable(logger, url, delay.TotalMilliseconds, ex.Message);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5_000));
            }
        }
    }

    private CancellationTokenSource? _quarantineStop;
    private Task? _quarantineService;

    /// <summary>Every mode has a store with quarantine records: each process answers for its own (see <see cref="QuarantineService"/>).</summary>
    private void StartQuarantineService(ILoggerFactory loggers, TimeProvider time)
    {
        var logger = loggers.CreateLogger<QuarantineService>();
        var service = new QuarantineService(Nats, Store, Settings.SagaOptions().ConsumerPrefix, Settings.WorkerId, logger, time);
        _quarantineStop = new CancellationTokenSource();
        _quarantineService = Supervisor.Run("quarantine service", service.RunAsync, logger, time, _quarantineStop.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (_quarantineStop is not null)
        {
            await _quarantineStop.CancelAsync();
            await _quarantineService!;
            _quarantineStop.Dispose();
            _quarantineStop = null;
        }
        if (Effects is not null)
        {
            await Effects.StopAsync(EffectGrace);
        }
        if (Slices is not null)
        {
            await Slices.DisposeAsync();
        }
        if (_services is not null)
        {
            await _services.DisposeAsync();
            _services = null;
        }
        if (Sagas is not null)
        {
            await Sagas.DisposeAsync();
        }
        await Nats.DisposeAsync();
        Store.Dispose();
    }
}
