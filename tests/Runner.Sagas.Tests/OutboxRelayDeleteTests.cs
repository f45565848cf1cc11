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
/// nats-server and a real LMDB file: one delete commit outstanding at most, no item handed out
/// again while its delete is on its way, and nothing left behind when a publish or a delete fails
/// meanwhile.
/// </summary>
public sealed class OutboxRelayDeleteTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>, IDisposable
{
    private readonly TempDirectory _dir = new();

    [Fact]
    public async Task With_a_batch_s_deletes_held_the_relay_publishes_one_more_batch_and_nothing_twice()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new SagaRuntimeOptions { RelayConcurrency = 4 };
        await using var setup = await SetUpAsync(options, new PartitionId(3), 10, cts.Token);
        var (store, connection, js) = (setup.Store, setup.Connection, setup.Js);

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
        OnFirstDelete(store, () => release.Wait(cts.Token));

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

    [Fact]
    public async Task An_item_handed_over_during_a_pass_that_the_pass_publishes_is_not_published_again_by_the_fast_path()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new SagaRuntimeOptions { RelayConcurrency = 4 };
        var partition = new PartitionId(6);
        await using var setup = await SetUpAsync(options, partition, 10, cts.Token);
        var store = setup.Store;
        var relay = new OutboxRelay(setup.Js, store, options, NullLogger.Instance, TimeProvider.System);

        // The relay's loop, a batch at a time: each published and its deletes committed before the next is read.
        async Task<List<string>> SendNextAsync()
        {
            var batch = await relay.NextBatchAsync(cts.Token);
            var (failed, deletes) = await relay.PublishAsync(batch, cts.Token);
            Assert.Equal(0, failed);
            await deletes;
            return batch.ConvertAll(e => e.Command.CommandId);
        }

        // The pass every relay starts with: two pages of four, its cursor on item 8.
        Assert.Equal(4, (await SendNextAsync()).Count);
        Assert.Equal(4, (await SendNextAsync()).Count);

        // Two commits handed over on the fast path mid-pass: one ahead of the cursor (the pass finds and publishes
        // it), one behind it (in a partition the pass has gone by: only the fast path publishes it).
        var ahead = new WriteBatch();
        var aheadCommand = OutboxRescanTests.Put(ahead, partition, 11);
        await store.Writer.CommitAsync(ahead, cts.Token);
        var behind = new WriteBatch();
        var behindCommand = OutboxRescanTests.Put(behind, new PartitionId(2), 1);
        await store.Writer.CommitAsync(behind, cts.Token);
        relay.Enqueue([
            new OutboxEntry(StoreKeys.Outbox(partition, 11, 0), aheadCommand),
            new OutboxEntry(StoreKeys.Outbox(new PartitionId(2), 1, 0), behindCommand),
        ]);

        // The pass's last page, the item ahead of its cursor on it; then the fast path, with only the item behind.
        Assert.Equal(["c-6-9", "c-6-10", aheadCommand.CommandId], await SendNextAsync());
        Assert.Equal([behindCommand.CommandId], await SendNextAsync());
        Assert.Equal(0, relay.Queued);
        Assert.Equal(0, relay.Depth());
        Assert.Equal(12, relay.Published);
    }

    [Fact]
    public async Task A_publish_refused_while_its_batch_s_deletes_commit_is_retried_and_quarantined_at_the_limit()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new SagaRuntimeOptions { RelayConcurrency = 4 };
        options = options with { JetStream = options.JetStream with { MaxDeliver = 2 } };
        // Three that the stream takes and one it refuses for good (too large), read by the relay in one batch.
        await using var setup = await SetUpAsync(options, new PartitionId(4), 3, cts.Token);
        var (store, js) = (setup.Store, setup.Js);
        var commands = options.JetStream.Streams.WorkflowCommands;
        var config = (await js.GetStreamAsync(commands, cancellationToken: cts.Token)).Info.Config;
        await js.UpdateStreamAsync(config with { MaxMsgSize = 2048 }, cts.Token);
        try
        {
            var batch = new WriteBatch();
            OutboxRescanTests.Put(batch, new PartitionId(4), 4, $$"""{"pad":"{{new string('x', 4096)}}"}""");
            await store.Writer.CommitAsync(batch, cts.Token);

            // The batch's deletes take a second to commit: the refused item's retry comes meanwhile.
            var held = 0;
            OnFirstDelete(store, () =>
            {
                Interlocked.Increment(ref held);
                Thread.Sleep(TimeSpan.FromSeconds(1));
            });
            // Refused twice (MaxDeliver), then quarantined and deleted: nothing is left in the outbox.
            var relay = await RunUntilEmptyAsync(setup, options, TimeSpan.FromSeconds(30), "the outbox emptied", cts.Token);
            Assert.Equal(1, held);
            Assert.Equal(3, relay.Published);
            var quarantined = Assert.Single(Runner.Sagas.Quarantine.QuarantineRecords.List(store, 10));
            Assert.Equal("c-4-4", quarantined.Headers![Runner.Core.Events.EventHeaders.MsgId]);
            Assert.Equal(2UL, quarantined.Deliveries);
        }
        finally
        {
            await js.UpdateStreamAsync(config, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_delete_commit_that_fails_after_the_relay_went_idle_wakes_it_to_publish_the_items_again()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new SagaRuntimeOptions { RelayConcurrency = 4 };
        await using var setup = await SetUpAsync(options, new PartitionId(5), 4, cts.Token);

        // The first delete commit fails, late enough that the relay has gone idle on its empty queue by then.
        var failures = 0;
        OnFirstDelete(setup.Store, () =>
        {
            Interlocked.Increment(ref failures);
            Thread.Sleep(TimeSpan.FromMilliseconds(300));
            throw new IOException("disk gone for a moment");
        });
        var relay = await RunUntilEmptyAsync(setup, options, TimeSpan.FromSeconds(20), "the items published again and deleted", cts.Token);
        Assert.Equal(1, failures);
        Assert.Equal(4, relay.Published);
    }

    /// <summary>A store under the test's directory holding <paramref name="count"/> outbox items of <paramref name="partition"/>, a connection, and the Runner streams.</summary>
    private async Task<SetUp> SetUpAsync(SagaRuntimeOptions options, PartitionId partition, int count, CancellationToken cancellationToken)
    {
        var store = new LmdbStore(new LmdbOptions { Path = _dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
        var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await StreamTopology.EnsureAsync(js, options.JetStream, NullLogger.Instance, cancellationToken);
        var batch = new WriteBatch();
        for (var i = 0; i < count; i++)
        {
            OutboxRescanTests.Put(batch, partition, (ulong)i + 1);
        }
        await store.Writer.CommitAsync(batch, cancellationToken);
        return new SetUp(store, connection, js);
    }

    /// <summary>Runs a relay on <paramref name="setup"/> until its outbox is empty (within <paramref name="within"/>), then stops it.</summary>
    private static async Task<OutboxRelay> RunUntilEmptyAsync(SetUp setup, SagaRuntimeOptions options, TimeSpan within, string what, CancellationToken cancellationToken)
    {
        var relay = new OutboxRelay(setup.Js, setup.Store, options, NullLogger.Instance, TimeProvider.System);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = relay.RunAsync(stop.Token);
        await SagaHarness.WaitUntilAsync(() => relay.Depth() == 0, within, what);
        await stop.CancelAsync();
        await running;
        return relay;
    }

    /// <summary>Runs <paramref name="action"/> on the writer thread in the first commit that deletes outbox items (the relay's).</summary>
    private static void OnFirstDelete(LmdbStore store, Action action)
    {
        var seen = 0;
        store.Writer.FaultInjector = (writes, _) =>
        {
            if (writes.Ops.Any(op => op.Space == KeySpace.Outbox && op.Value is null) && Interlocked.Exchange(ref seen, 1) == 0)
            {
                action();
            }
        };
    }

    private sealed record SetUp(LmdbStore Store, NatsConnection Connection, NatsJSContext Js) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            Store.Dispose();
        }
    }

    public void Dispose() => _dir.Dispose();
}
