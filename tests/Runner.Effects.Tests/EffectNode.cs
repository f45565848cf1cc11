using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects.Claims;
using Runner.Effects.Resilience;
using Runner.Effects.Workers;
using Runner.Host.Service;
using Runner.Messaging;
using Runner.Storage;
using Runner.Testing;

namespace Runner.Effects.Tests;

/// <summary>
/// One effect worker process as the host composes it — its own NATS connection, executor,
/// HTTP client factory and LMDB quarantine — so a test can run several that compete.
/// </summary>
internal sealed class EffectNode : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private EffectNode(NatsConnection connection, ServiceProvider services, LmdbStore store, TempDirectory dir, EffectRuntime runtime)
    {
        Connection = connection;
        _services = services;
        Store = store;
        Dir = dir;
        Runtime = runtime;
    }

    public NatsConnection Connection { get; }
    public LmdbStore Store { get; }
    public TempDirectory Dir { get; }
    public EffectRuntime Runtime { get; }

    public long Executed => Runtime.Workers.Sum(w => w.Executed);
    public long Republished => Runtime.Workers.Sum(w => w.Republished);
    public long Lost => Runtime.Workers.Sum(w => w.Lost);

    public static async Task<EffectNode> StartAsync(
        NatsServerFixture nats,
        IReadOnlyList<EffectManifest> effects,
        string worker,
        TimeSpan? lease = null,
        TimeSpan? ackWait = null,
        string? secretsDir = null,
        EffectWorkerHooks? hooks = null,
        ILoggerFactory? loggers = null,
        int maxDeliver = 5,
        TimeSpan? drain = null,
        Func<INatsJSContext, Task<Runner.Effects.Providers.Slices.SliceProvider>>? slices = null)
    {
        loggers ??= Environment.GetEnvironmentVariable("RUNNER_TEST_LOGS") == "1" ? LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Debug)) : NullLoggerFactory.Instance;
        var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        var services = EffectExecutor.AddHttpClient(new ServiceCollection()).BuildServiceProvider();
        var dir = new TempDirectory("runner-effects");
        var store = new LmdbStore(new LmdbOptions { Path = dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
        var executor = EffectExecutor.Create(services.GetRequiredService<IHttpClientFactory>(), secretsDir ?? dir.File("secrets"), loggers, TimeProvider.System, slices is null ? null : await slices(js));
        var options = new EffectWorkerOptions
        {
            JetStream = new JetStreamSettings { AckWait = ackWait ?? TimeSpan.FromSeconds(30), MaxDeliver = maxDeliver },
            DrainTimeout = drain ?? TimeSpan.FromSeconds(1),
        };
        var claims = new EffectClaimOptions { Worker = worker, Lease = lease ?? TimeSpan.FromSeconds(30) };
        var runtime = new EffectRuntime(js, effects, executor, new StoreCommandQuarantine(store, 64 * 1024, TimeProvider.System), options, claims, loggers, TimeProvider.System) { Hooks = hooks };
        await runtime.StartAsync(CancellationToken.None);
        return new EffectNode(connection, services, store, dir, runtime);
    }

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync();
        await Connection.DisposeAsync();
        await _services.DisposeAsync();
        Store.Dispose();
        Dir.Dispose();
    }
}
