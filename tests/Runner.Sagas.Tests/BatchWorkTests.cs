using System.Text.Json;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Partitions;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>A batch's records written into its pooled room: the same bytes the serializer gives as an array of their own.</summary>
public sealed class BatchWorkTests
{
    [Fact]
    public void A_workers_tables_come_to_its_next_batch_empty_and_serve_one_batch_at_a_time()
    {
        var tables = new BatchWork.Tables();
        var instance = new InstanceId(new TenantId("acme"), new SagaName("order"), new CorrelationKey("o-1"));
        using (var first = new BatchWork(new PartitionId(1), 2, tables))
        {
            first.Instances[instance] = new SagaInstanceRecord { Version = 1 };
            first.SeenEvents.Add(new SeenEvent(instance, "e-1"));
            first.Batch.Put(KeySpace.Saga, [1], new byte[] { 1 });

            var error = Assert.Throws<InvalidOperationException>(() => new BatchWork(new PartitionId(1), 2, tables));
            Assert.Contains("already in use", error.Message, StringComparison.Ordinal);
            Assert.Same(tables.Instances, first.Instances);
        }

        using var next = new BatchWork(new PartitionId(1), 2, tables);
        Assert.Same(tables.Instances, next.Instances);
        Assert.Empty(next.Instances);
        Assert.Empty(next.SeenEvents);
        Assert.Equal(0, next.Batch.Count);
    }

    [Fact]
    public void Records_put_from_the_pooled_room_are_the_serializers_bytes()
    {
        using var work = new BatchWork(new PartitionId(3), 4);
        using var state = JsonDocument.Parse("""{"total":12.5,"name":"caf\u00e9 <b> \"q\"","list":[1,2,3]}""");
        var records = new List<(object Value, byte[] Expected)>();
        for (var i = 0; i < 300; i++)
        {
            var instance = new SagaInstanceRecord
            {
                State = state.RootElement.Clone(),
                Version = i,
                LastEventId = $"e-{i}-\u00fc\u2028",
                ManifestHash = new string('h', i % 64),
                Timers = i % 2 == 0 ? null : new Dictionary<string, long> { ["t"] = i },
            };
            var marker = new DedupeRecord { InboxSequence = (ulong)i, Outcome = DedupeRecord.Applied, AtMs = i, CommittedAtMs = i * 2 };
            work.PutJson(KeySpace.Saga, [(byte)i], instance, CoreJsonContext.Default.SagaInstanceRecord);
            work.PutJson(KeySpace.Dedupe, [(byte)i], marker, CoreJsonContext.Default.DedupeRecord);
            records.Add((instance, JsonSerializer.SerializeToUtf8Bytes(instance, CoreJsonContext.Default.SagaInstanceRecord)));
            records.Add((marker, JsonSerializer.SerializeToUtf8Bytes(marker, CoreJsonContext.Default.DedupeRecord)));
        }

        Assert.Equal(records.Count, work.Batch.Count);
        AssertValues(work, records);
    }

    [Fact]
    public void A_write_that_fails_part_way_leaves_nothing_in_the_next_value()
    {
        using var work = new BatchWork(new PartitionId(1), 1);
        // Larger than the room left, so the writer hands part of it over before it fails.
        Assert.Throws<InvalidOperationException>(() => work.PutJson(KeySpace.History, [1], 0, static (writer, _) =>
        {
            writer.WriteStartArray();
            for (var i = 0; i < 5_000; i++)
            {
                writer.WriteStringValue("partial value that must not reach the store");
            }
            throw new InvalidOperationException("the script's output broke mid-document");
        }));
        var marker = new DedupeRecord { InboxSequence = 9, Outcome = DedupeRecord.Applied, AtMs = 1, CommittedAtMs = 2 };

        work.PutJson(KeySpace.Dedupe, [2], marker, CoreJsonContext.Default.DedupeRecord);

        Assert.Equal(1, work.Batch.Count);
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(marker, CoreJsonContext.Default.DedupeRecord), work.Batch.Ops[0].Value!.Value.ToArray());
    }

    private static void AssertValues(BatchWork work, List<(object Value, byte[] Expected)> records)
    {
        for (var i = 0; i < records.Count; i++)
        {
            Assert.Equal(records[i].Expected, work.Batch.Ops[i].Value!.Value.ToArray());
        }
    }
}
