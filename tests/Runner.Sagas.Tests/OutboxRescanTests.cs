using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Outbox;
using Runner.Storage;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The relay's outbox scan, on a real LMDB file (batch selection only: nothing is published).</summary>
public sealed class OutboxRescanTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly LmdbStore _store;

    public OutboxRescanTests()
    {
        _store = new LmdbStore(new LmdbOptions { Path = _dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
    }

    /// <summary>
    /// A partition taken while a scan is part-way through the outbox: its items sit before the
    /// scan's cursor, so the rescan it asks for must be a whole pass of its own, not folded into
    /// the end of the pass under way.
    /// </summary>
    [Fact]
    public async Task A_partition_taken_mid_scan_gets_its_items_scanned_even_when_they_sit_before_the_cursor()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var batch = new WriteBatch();
        for (var i = 0; i < 3; i++)
        {
            Put(batch, new PartitionId(2), (ulong)i + 1);
        }
        for (var i = 0; i < 12; i++)
        {
            Put(batch, new PartitionId(5), (ulong)i + 1);
        }
        await _store.Writer.CommitAsync(batch, cts.Token);

        var owned = new HashSet<int> { 5 };
        await using var connection = new NatsConnection(new NatsOpts { Url = "nats://127.0.0.1:1" });
        var relay = new OutboxRelay(new NatsJSContext(connection), _store, new SagaRuntimeOptions { RelayConcurrency = 4 },
            NullLogger.Instance, TimeProvider.System, p => owned.Contains(p.Value));

        // The first pages: partition 2's items are read and skipped (not owned), the scan moves on.
        var seen = new List<OutboxEntry>();
        seen.AddRange(await relay.NextBatchAsync(cts.Token));
        seen.AddRange(await relay.NextBatchAsync(cts.Token));
        Assert.DoesNotContain(seen, e => e.Key.AsSpan().StartsWith(StoreKeys.OutboxPrefix(new PartitionId(2))));

        // Partition 2 is taken now, mid-pass.
        owned.Add(2);
        relay.Rescan();
        for (var i = 0; i < 10 && seen.Count(e => e.Key.AsSpan().StartsWith(StoreKeys.OutboxPrefix(new PartitionId(2)))) < 3; i++)
        {
            seen.AddRange(await relay.NextBatchAsync(cts.Token));
        }

        Assert.Equal(3, seen.Count(e => e.Key.AsSpan().StartsWith(StoreKeys.OutboxPrefix(new PartitionId(2)))));
        Assert.Equal(12, seen.Count(e => e.Key.AsSpan().StartsWith(StoreKeys.OutboxPrefix(new PartitionId(5)))));
    }

    /// <summary>
    /// The fast path full (a relay behind its partition workers): the items it cannot take are
    /// committed, so the relay must rescan for them. Before, a full queue dropped them and said it
    /// had taken them, and they sat in the store until the process restarted.
    /// </summary>
    [Fact]
    public async Task Items_handed_over_while_the_fast_path_is_full_are_found_by_a_rescan()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var connection = new NatsConnection(new NatsOpts { Url = "nats://127.0.0.1:1" });
        var relay = new OutboxRelay(new NatsJSContext(connection), _store, new SagaRuntimeOptions { RelayConcurrency = 4 },
            NullLogger.Instance, TimeProvider.System, queueCapacity: 3);

        // The pass every relay starts with, over an empty outbox.
        Assert.Empty(await relay.NextBatchAsync(cts.Token));

        var batch = new WriteBatch();
        var entries = new List<OutboxEntry>();
        for (var i = 0; i < 10; i++)
        {
            var command = Put(batch, new PartitionId(1), (ulong)i + 1);
            entries.Add(new OutboxEntry(StoreKeys.Outbox(new PartitionId(1), (ulong)i + 1, 0), command));
        }
        await _store.Writer.CommitAsync(batch, cts.Token);
        relay.Enqueue(entries);
        Assert.Equal(3, relay.Queued);

        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (seen.Count < entries.Count)
        {
            // Without the rescan this waits for the queue until the token runs out.
            foreach (var entry in await relay.NextBatchAsync(cts.Token))
            {
                seen.Add(entry.Command.CommandId);
            }
        }
        Assert.Equal(entries.Select(e => e.Command.CommandId).Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));

        // The pass found the queued items in the store and let the queue go: kept, each would be published again
        // after the pass had published and deleted it.
        Assert.Equal(0, relay.Queued);
    }

    internal static CommandMessage Put(WriteBatch batch, PartitionId partition, ulong sequence, string payload = "{}")
    {
        var command = new CommandMessage
        {
            CommandId = $"c-{partition.Value}-{sequence}",
            Tenant = "acme",
            Effect = "probe.run",
            Saga = "probe",
            CorrelationId = "k",
            CausationId = $"e-{sequence}",
            CreatedAt = "2026-01-01T00:00:00Z",
            Payload = JsonDocument.Parse(payload).RootElement,
        };
        batch.Put(KeySpace.Outbox, StoreKeys.Outbox(partition, sequence, 0), JsonSerializer.SerializeToUtf8Bytes(command, CoreJsonContext.Default.CommandMessage));
        return command;
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }
}
