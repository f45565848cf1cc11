using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects;
using Runner.Effects.Claims;
using Runner.Effects.Workers;
using Runner.Messaging;

namespace Runner.Bench.Effects;

/// <summary>One effect worker process as the host composes it: its own NATS connection and an <see cref="EffectRuntime"/>.</summary>
internal sealed class WorkerNode : IAsyncDisposable
{
    private WorkerNode(NatsConnection connection, EffectRuntime runtime)
    {
        Connection = connection;
        Runtime = runtime;
    }

    public NatsConnection Connection { get; }
    public EffectRuntime Runtime { get; }

    public long Executed => Runtime.Workers.Sum(w => w.Executed);
    public long Republished => Runtime.Workers.Sum(w => w.Republished);

    public static async Task<WorkerNode> StartAsync(
        string url,
        string worker,
        IReadOnlyList<EffectManifest> effects,
        IEffectExecutor executor,
        ICommandQuarantine quarantine,
        JetStreamSettings jetStream,
        string consumerPrefix,
        double? claimAhead,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        var connection = new NatsConnection(new NatsOpts { Url = url, Name = "bench-" + worker });
        try
        {
            await connection.ConnectAsync();
            var runtime = new EffectRuntime(new NatsJSContext(connection), effects, executor, quarantine,
                new EffectWorkerOptions { JetStream = jetStream, ConsumerPrefix = consumerPrefix, ClaimAhead = claimAhead ?? new EffectWorkerOptions().ClaimAhead },
                new EffectClaimOptions { Worker = worker }, loggers, TimeProvider.System);
            await runtime.StartAsync(cancellationToken);
            return new WorkerNode(connection, runtime);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync();
        await Connection.DisposeAsync();
    }
}
