using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas.Outbox;
using Runner.Storage;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// The relay publishes the next batch while the previous batch's deletes commit, on a real
/// nats-server and a real LMDB file: one delete commit outstanding at most, and no item handed
/// out again while its delete is on its way.
/// </summary>
public sealed class OutboxRelayOverlapTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>, IDisposable
{
    private readonly TempDirectory _dir = new();

    [Fact]
    public async Task With_a_batch_s_deletes_held_the_relay_publishes_one_more_batch_and_nothing_twice()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var store = new LmdbStore(new LmdbOptions { Path = _dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
        var options = new SagaRuntimeOptions { RelayConcurrency = 4 };
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await StreamTopology.EnsureAsync(js, options.JetStream, NullLogger.Instance, cts.Token);

        var batch = new WriteBatch();
        for (var i = 0; i < 10; i++)
        {
            OutboxRescanTests.Put(batch, new PartitionId(3), (ulong)i + 1);
        }
        await store.Writer.CommitAsync(batch, cts.Token);

        // Every publish the relay makes, duplicates included (the stream would drop those by their Nats-Msg-Id).
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var sub = await connection.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cts.Token);
        var reading = Task.Run(async () =>
        {
            await foreach (var msg in sub.Msgs.ReadAllAsync(cts.Token))
            {
                seen.Enqueue(msg.Headers?["Nats-Msg-Id"].ToString() ?? "?");
            }
        }, cts.Token);
        await connection.PingAsync(cts.Token);

        // The first commit that deletes outbox items is held on the writer thread until released.
        using var release = new ManualResetEventSlim();
        var held = 0;
        store.Writer.FaultInjector = (writes, _) =>
        {
            if (writes.Ops.Any(op => op.Space == KeySpace.Outbox && op.Value is null) && Interlocked.Exchange(ref held, 1) == 0)
            {
                release.Wait(cts.Token);
            }
        };

        var relay = new OutboxRelay(js, store, options, NullLogger.Instance, TimeProvider.System);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var running = relay.RunAsync(stop.Token);

        // The first batch is published and its deletes held; the second is published meanwhile, and then the
        // relay waits for the first's deletes before it goes on.
        await SagaHarness.WaitUntilAsync(() => seen.Count >= 8, TimeSpan.FromSeconds(30), "two batches published");
        relay.Rescan();
        await Task.Delay(TimeSpan.FromMilliseconds(500), cts.Token);
        Assert.Equal(8, seen.Count);
        Assert.Equal(0, relay.Published);
        Assert.Equal(10, relay.Depth());

        release.Set();
        await SagaHarness.WaitUntilAsync(() => relay.Published == 10 && relay.Depth() == 0, TimeSpan.FromSeconds(30), "every item published and deleted");
        await stop.CancelAsync();
        await running;

        Assert.Equal(10, seen.Count);
        Assert.Equal(10, seen.Distinct(StringComparer.Ordinal).Count());
        await sub.UnsubscribeAsync();
        await reading;
    }

    public void Dispose() => _dir.Dispose();
}
