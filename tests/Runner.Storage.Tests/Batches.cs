using System.Globalization;
using System.Text;
using Runner.Core.Ids;
using Runner.Core.Keys;

namespace Runner.Storage.Tests;

/// <summary>Builds batches shaped like saga transitions and checks what of them is in the store.</summary>
internal static class Batches
{
    public const string Consumer = "saga-worker";

    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(60);

    public static InstanceId Instance(string key) => new(new TenantId("acme"), new SagaName("order"), new CorrelationKey(key));

    /// <summary>
    /// One transition: state, two outbox items, a schedule, a dedupe marker and the checkpoint —
    /// every keyspace invariant 2 names, with values tagged so a test can tell whose write it sees.
    /// </summary>
    public static WriteBatch Transition(int partition, string sagaKey, ulong inboxSequence, string tag)
    {
        var p = new PartitionId(partition);
        var instance = Instance(sagaKey);
        var batch = new WriteBatch();
        batch.Put(KeySpace.Saga, StoreKeys.Instance(p, instance), Utf8($"state:{tag}"));
        batch.Put(KeySpace.Outbox, StoreKeys.Outbox(p, inboxSequence, 0), Utf8($"outbox0:{tag}"));
        batch.Put(KeySpace.Outbox, StoreKeys.Outbox(p, inboxSequence, 1), Utf8($"outbox1:{tag}"));
        batch.Put(KeySpace.Schedule, StoreKeys.Schedule(p, 1_000 + (long)inboxSequence, instance, "timeout", 1), Utf8($"schedule:{tag}"));
        batch.Put(KeySpace.Dedupe, StoreKeys.Dedupe(p, instance, $"evt-{inboxSequence}"), Utf8($"dedupe:{tag}"));
        batch.Put(KeySpace.Checkpoint, StoreKeys.Checkpoint(Consumer, p), Utf8(inboxSequence.ToString(CultureInfo.InvariantCulture)));
        return batch;
    }

    /// <summary>Puts of <paramref name="count"/> values of <paramref name="valueSize"/> bytes, keys unique per <paramref name="tag"/>.</summary>
    public static WriteBatch Bulk(string tag, int count, int valueSize)
    {
        var batch = new WriteBatch();
        for (var i = 0; i < count; i++)
        {
            var value = new byte[valueSize];
            value.AsSpan().Fill((byte)(i % 251));
            batch.Put(KeySpace.Saga, Utf8($"{tag}/{i:D6}"), value);
        }
        return batch;
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static byte[]? Get(LmdbStore store, KeySpace space, byte[] key) => store.Read(r => r.Get(space, key));

    /// <summary>Every put of the batch is in the store with the batch's value.</summary>
    public static void AssertCommitted(LmdbStore store, WriteBatch batch)
    {
        var missing = store.Read(r =>
        {
            var wrong = new List<string>();
            foreach (var op in batch.Ops.Where(o => o.Value is not null))
            {
                var stored = r.Get(op.Space, op.Key);
                if (stored is null || !stored.AsSpan().SequenceEqual(op.Value!.Value.Span))
                {
                    wrong.Add($"{op.Space}:{Describe(op.Key)}");
                }
            }
            return wrong;
        });
        Assert.True(missing.Count == 0, $"committed batch is missing or wrong at: {string.Join(", ", missing)}");
    }

    /// <summary>No key the batch writes holds the batch's value (absent, or still the previous value).</summary>
    public static void AssertNothingWritten(LmdbStore store, WriteBatch batch)
    {
        var found = store.Read(r =>
        {
            var hits = new List<string>();
            foreach (var op in batch.Ops.Where(o => o.Value is not null))
            {
                var stored = r.Get(op.Space, op.Key);
                if (stored is not null && stored.AsSpan().SequenceEqual(op.Value!.Value.Span))
                {
                    hits.Add($"{op.Space}:{Describe(op.Key)}");
                }
            }
            return hits;
        });
        Assert.True(found.Count == 0, $"a failed batch left writes behind at: {string.Join(", ", found)}");
    }

    /// <summary>None of the batch's keys exist at all.</summary>
    public static void AssertAbsent(LmdbStore store, WriteBatch batch)
    {
        var found = store.Read(r =>
        {
            var hits = new List<string>();
            foreach (var op in batch.Ops)
            {
                if (r.Contains(op.Space, op.Key))
                {
                    hits.Add($"{op.Space}:{Describe(op.Key)}");
                }
            }
            return hits;
        });
        Assert.True(found.Count == 0, $"keys of a failed batch exist: {string.Join(", ", found)}");
    }

    public static string Describe(byte[] key) => Encoding.UTF8.GetString(key).Replace(StoreKeys.Separator, '|');
}
