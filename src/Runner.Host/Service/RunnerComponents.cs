using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Host.Settings;
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
    private RunnerComponents(NatsConnection nats, LmdbStore store, ManifestSet manifests, SagaRuntime? sagas)
    {
        Nats = nats;
        Store = store;
        Manifests = manifests;
        Sagas = sagas;
    }

    public NatsConnection Nats { get; }

    public LmdbStore Store { get; }

    public ManifestSet Manifests { get; }

    public SagaRuntime? Sagas { get; }

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
        HostLog.Starting(logger, typeof(RunnerComponents).Assembly.GetName().Version?.ToString() ?? "0", settings.Mode.ToString().ToLowerInvariant(),
            settings.NatsUrl, settings.DataDir, settings.Manifests, manifests.Sagas.Count, manifests.Effects.Count, manifests.Hash[..12], settings.Partitions);

        var store = new LmdbStore(settings.StoreOptions(), loggers.CreateLogger<LmdbStore>());
        var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner", LoggerFactory = loggers });
        try
        {
            await ConnectAsync(nats, settings.NatsUrl, logger, time, cancellationToken);
            SagaRuntime? sagas = null;
            if (settings.Mode is RunnerMode.Saga or RunnerMode.Combined)
            {
                sagas = new SagaRuntime(new NatsJSContext(nats), store, manifests, settings.SagaOptions(), loggers, time, listener: listener);
                await sagas.StartAsync(cancellationToken);
            }
            if (settings.Mode is RunnerMode.Effect)
            {
                HostLog.NoEffectProviders(logger);
            }
            return new RunnerComponents(nats, store, manifests, sagas);
        }
        catch
        {
            await nats.DisposeAsync();
            store.Dispose();
            throw;
        }
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

    public async ValueTask DisposeAsync()
    {
        if (Sagas is not null)
        {
            await Sagas.DisposeAsync();
        }
        await Nats.DisposeAsync();
        Store.Dispose();
    }
}
