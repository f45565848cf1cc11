using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Sagas.Partitions;
using Runner.Sagas.Quarantine;
using Runner.Storage;

namespace Runner.Testing;

/// <summary>
/// A saga runtime on a real nats-server and a real LMDB file, with the manifests given as files.
/// Streams are deleted first, so each test starts from an empty server.
/// </summary>
internal sealed class SagaHarness : IAsyncDisposable
{
    private readonly ILoggerFactory _loggers;

    private SagaHarness(NatsServerFixture nats, NatsConnection connection, TempDirectory dir, ManifestSet manifests, SagaRuntimeOptions options, ILoggerFactory loggers)
    {
        Nats = nats;
        Connection = connection;
        Js = new NatsJSContext(connection);
        Dir = dir;
        Manifests = manifests;
        Options = options;
        _loggers = loggers;
    }

    public NatsServerFixture Nats { get; }
    public NatsConnection Connection { get; }
    public INatsJSContext Js { get; }
    public TempDirectory Dir { get; }
    public ManifestSet Manifests { get; }
    public SagaRuntimeOptions Options { get; private set; }
    public LmdbStore? Store { get; private set; }
    public SagaRuntime? Runtime { get; private set; }
    public RecordingListener Listener { get; } = new();

    public string StorePath => Dir.File("lmdb");

    /// <summary>The consumer the runtime's router of <paramref name="stream"/> reads now (its lease epoch's own).</summary>
    public string RouterConsumer(string stream) =>
        Runtime?.RouterConsumers.FirstOrDefault(r => r.Stream == stream).Consumer ?? throw new InvalidOperationException($"no router of {stream} runs");

    public static async Task<SagaHarness> StartAsync(
        NatsServerFixture nats,
        IReadOnlyDictionary<string, string> manifestFiles,
        Func<SagaRuntimeOptions, SagaRuntimeOptions>? configure = null,
        bool start = true,
        ILoggerFactory? loggers = null)
    {
        var dir = new TempDirectory("runner-saga");
        var manifestDir = dir.File("manifests");
        Directory.CreateDirectory(manifestDir);
        foreach (var (name, content) in manifestFiles)
        {
            await File.WriteAllTextAsync(Path.Combine(manifestDir, name), content);
        }
        // No warm-up (WarmUpTests and the host's tests run it): it would only delay every runtime's first lease.
        var options = new SagaRuntimeOptions { Partitions = 8, WarmUp = false };
        options = configure?.Invoke(options) ?? options;
        var loaded = ManifestLoader.Load(manifestDir, options.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("test manifests invalid: " + string.Join("; ", loaded.Errors));
        }
        var connection = await nats.ConnectAsync();
        var harness = new SagaHarness(nats, connection, dir, loaded.Set!, options, loggers ?? FileLog.FromEnvironment() ?? NullLoggerFactory.Instance);
        await harness.ResetStreamsAsync();
        if (start)
        {
            await harness.StartRuntimeAsync();
        }
        return harness;
    }

    /// <summary>Writes <paramref name="manifestFiles"/> into a directory of their own and swaps them in, as a reload does.</summary>
    public async Task SwapAsync(IReadOnlyDictionary<string, string> manifestFiles, string name, CancellationToken cancellationToken)
    {
        var dir = Dir.File("manifests-" + name);
        Directory.CreateDirectory(dir);
        foreach (var (file, text) in manifestFiles)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, file), text, cancellationToken);
        }
        var loaded = ManifestLoader.Load(dir, Options.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("manifests invalid: " + string.Join("; ", loaded.Errors));
        }
        await (Runtime ?? throw new InvalidOperationException("runtime not started")).SwapAsync(loaded.Set!, cancellationToken);
    }

    public async Task ResetStreamsAsync()
    {
        var names = new List<string>();
        await foreach (var name in Js.ListStreamNamesAsync())
        {
            names.Add(name);
        }
        foreach (var name in names)
        {
            await Js.DeleteStreamAsync(name);
        }
        await Runner.Messaging.StreamTopology.EnsureAsync(Js, Options.JetStream, NullLogger.Instance, CancellationToken.None);
    }

    public async Task StartRuntimeAsync()
    {
        Store ??= new LmdbStore(new LmdbOptions { Path = StorePath }, NullLogger<LmdbStore>.Instance);
        Runtime = new SagaRuntime(Js, Store, Manifests, Options, _loggers, TimeProvider.System, listener: Listener);
        await Runtime.StartAsync(CancellationToken.None);
    }

    public async Task StopRuntimeAsync(bool closeStore = true)
    {
        if (Runtime is not null)
        {
            await Runtime.StopAsync();
            Runtime = null;
        }
        if (closeStore)
        {
            Store?.Dispose();
            Store = null;
        }
    }

    public static JsonObject CloudEvent(string id, string type, object? data, string source = "tests") => new()
    {
        ["specversion"] = "1.0",
        ["id"] = id,
        ["source"] = source,
        ["type"] = type,
        ["data"] = data is null ? null : JsonSerializer.SerializeToNode(data),
    };

    public async Task<ulong> PublishAsync(string subject, JsonObject evt, NatsHeaders? headers = null, string? msgId = null, CancellationToken cancellationToken = default) =>
        await PublishRawAsync(subject, Encoding.UTF8.GetBytes(evt.ToJsonString()), headers, msgId, cancellationToken);

    public async Task<ulong> PublishRawAsync(string subject, byte[] payload, NatsHeaders? headers = null, string? msgId = null, CancellationToken cancellationToken = default)
    {
        var ack = await Js.PublishAsync(subject, payload, headers: headers, opts: msgId is null ? null : new NatsJSPubOpts { MsgId = msgId }, cancellationToken: cancellationToken);
        Runner.Messaging.PubAcks.EnsureStored(ack);
        return ack.Seq;
    }

    /// <summary>Every message on WORKFLOW_COMMANDS so far (read with an ordered consumer).</summary>
    public async Task<List<(string Subject, CommandMessage Command, NatsHeaders? Headers)>> CommandsAsync(CancellationToken cancellationToken)
    {
        var stream = await Js.GetStreamAsync(Options.JetStream.Streams.WorkflowCommands, cancellationToken: cancellationToken);
        var total = stream.Info.State.Messages;
        var result = new List<(string, CommandMessage, NatsHeaders?)>();
        if (total == 0)
        {
            return result;
        }
        var consumer = await Js.CreateOrderedConsumerAsync(Options.JetStream.Streams.WorkflowCommands, cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            result.Add((msg.Subject, JsonSerializer.Deserialize(msg.Data!, CoreJsonContext.Default.CommandMessage)!, msg.Headers));
            if (result.Count >= total)
            {
                break;
            }
        }
        return result;
    }

    /// <summary>Every message on a stream so far, in stream order (read with an ordered consumer).</summary>
    public async Task<List<(string Subject, byte[] Data, NatsHeaders? Headers)>> MessagesAsync(string stream, CancellationToken cancellationToken)
    {
        var info = await Js.GetStreamAsync(stream, cancellationToken: cancellationToken);
        var total = info.Info.State.Messages;
        var result = new List<(string, byte[], NatsHeaders?)>();
        if (total == 0)
        {
            return result;
        }
        var consumer = await Js.CreateOrderedConsumerAsync(stream, cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            result.Add((msg.Subject, msg.Data ?? [], msg.Headers));
            if (result.Count >= total)
            {
                break;
            }
        }
        return result;
    }

    public SagaInstanceRecord? Instance(string tenant, string saga, string key)
    {
        var store = Store ?? throw new InvalidOperationException("store closed");
        var instance = new InstanceId(new TenantId(tenant), new SagaName(saga), new CorrelationKey(key));
        var partition = PartitionOf(instance);
        var raw = store.Read(r => r.Get(KeySpace.Saga, StoreKeys.Instance(partition, instance)));
        return raw is null ? null : JsonSerializer.Deserialize(raw, CoreJsonContext.Default.SagaInstanceRecord);
    }

    /// <summary>The consumer partition <paramref name="partition"/> is read through now (named by the owner's epoch), once the runtime holds it.</summary>
    public async Task<string> PartitionConsumerAsync(int partition)
    {
        Runner.Sagas.Ownership.OwnedLease? lease = null;
        await WaitUntilAsync(() => (lease = Runtime?.PartitionLeases.FirstOrDefault(l => l.Partition?.Value == partition)) is not null,
            TimeSpan.FromSeconds(30), $"partition {partition} to be held");
        return Options.PartitionConsumer(partition, lease!.Epoch);
    }

    /// <summary>
    /// The consumer of partition <paramref name="partition"/> as the server holds it now; null while there is none: the
    /// owner creates it after it takes the lease, and deletes and creates it again when it re-attaches.
    /// </summary>
    public async Task<ConsumerInfo?> PartitionConsumerInfoAsync(int partition, CancellationToken cancellationToken)
    {
        var name = await PartitionConsumerAsync(partition);
        try
        {
            return (await Js.GetConsumerAsync(Options.JetStream.Streams.Inbox, name, cancellationToken)).Info;
        }
        catch (NatsJSApiException ex) when (ex.Error.ErrCode == ConsumerNotFound)
        {
            return null;
        }
    }

    private const int ConsumerNotFound = 10014;

    private PartitionId PartitionOf(InstanceId instance) => Runner.Core.Ids.Partitioner.PartitionOf(instance, Options.Partitions);

    /// <summary>
    /// Whether the consumer of the instance's partition has acked all it was given and holds nothing more. A worker acks
    /// after its commit, so every event routed to that partition so far is in the store.
    /// </summary>
    public async Task<bool> PartitionDrainedAsync(string tenant, string saga, string key, CancellationToken cancellationToken)
    {
        var partition = PartitionOf(new InstanceId(new TenantId(tenant), new SagaName(saga), new CorrelationKey(key)));
        var info = await PartitionConsumerInfoAsync(partition.Value, cancellationToken);
        return info is { NumPending: 0, NumAckPending: 0 };
    }

    public List<QuarantineRecord> Quarantine() => QuarantineRecords.List(Store ?? throw new InvalidOperationException("store closed"), 10_000);

    public long Count(KeySpace space) => (Store ?? throw new InvalidOperationException("store closed")).Read(r => r.Count(space));

    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!await condition())
        {
            if (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds}s waiting for {what}");
            }
            await Task.Delay(50, CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopRuntimeAsync();
        await Connection.DisposeAsync();
        Dir.Dispose();
    }
}

/// <summary>Keeps every committed transition, in commit order.</summary>
internal sealed class RecordingListener : ITransitionListener
{
    public ConcurrentQueue<TransitionNotice> Notices { get; } = new();

    public int Count => Notices.Count;

    public void OnCommitted(IReadOnlyList<TransitionNotice> notices)
    {
        foreach (var notice in notices)
        {
            Notices.Enqueue(notice);
        }
    }
}
