using Runner.Core.Ids;
using Runner.Core.Keys;

namespace Runner.Storage.Tests;

public sealed class ReaderTests : IDisposable
{
    private readonly StoreDirectory _dir = new();
    private readonly LmdbStore _store;
    private readonly CancellationTokenSource _cts = new(Batches.Timeout);

    public ReaderTests()
    {
        _store = _dir.Open();
    }

    [Fact]
    public async Task Deleting_missing_keys_does_not_fail_the_batch()
    {
        var batch = new WriteBatch();
        foreach (var space in KeySpaces.All)
        {
            batch.Delete(space, Batches.Utf8($"missing-{space}"));
        }
        batch.Put(KeySpace.Saga, Batches.Utf8("present"), Batches.Utf8("v"));
        batch.Delete(KeySpace.Saga, Batches.Utf8("missing-after-put"));

        await _store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token);

        Assert.Equal("v"u8.ToArray(), Batches.Get(_store, KeySpace.Saga, Batches.Utf8("present")));
        Assert.Equal(1, _store.Read(r => r.Count(KeySpace.Saga)));
    }

    [Fact]
    public async Task TryGet_reads_a_value_in_place_and_tells_a_missing_key_apart_from_an_empty_value()
    {
        var batch = new WriteBatch();
        batch.Put(KeySpace.Saga, Batches.Utf8("full"), Batches.Utf8("""{"n":1}"""));
        batch.Put(KeySpace.Saga, Batches.Utf8("empty"), Array.Empty<byte>());
        await _store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token);

        var read = _store.Read(static r =>
        (
            full: r.TryGet(KeySpace.Saga, Batches.Utf8("full"), out var full) ? System.Text.Encoding.UTF8.GetString(full) : null,
            empty: r.TryGet(KeySpace.Saga, Batches.Utf8("empty"), out var empty) ? empty.Length : -1,
            missing: r.TryGet(KeySpace.Saga, Batches.Utf8("missing"), out var missing) || missing.Length != 0,
            otherSpace: r.TryGet(KeySpace.Outbox, Batches.Utf8("full"), out _)
        ));

        Assert.Equal("""{"n":1}""", read.full);
        Assert.Equal(0, read.empty);
        Assert.False(read.missing);
        Assert.False(read.otherSpace);
    }

    [Fact]
    public async Task Delete_then_put_in_one_batch_applies_in_order()
    {
        var key = Batches.Utf8("k");
        var first = new WriteBatch();
        first.Put(KeySpace.Saga, key, Batches.Utf8("one"));
        await _store.Writer.CommitAsync(first, _cts.Token).WaitAsync(_cts.Token);

        var second = new WriteBatch();
        second.Delete(KeySpace.Saga, key);
        second.Put(KeySpace.Saga, key, Batches.Utf8("two"));
        second.Put(KeySpace.Outbox, key, Batches.Utf8("x"));
        second.Delete(KeySpace.Outbox, key);
        await _store.Writer.CommitAsync(second, _cts.Token).WaitAsync(_cts.Token);

        Assert.Equal("two"u8.ToArray(), Batches.Get(_store, KeySpace.Saga, key));
        Assert.Null(Batches.Get(_store, KeySpace.Outbox, key));
    }

    [Fact]
    public async Task Scan_returns_only_the_prefix_in_key_order()
    {
        var expected = await WriteOutboxAsync();

        var scanned = _store.Read(r => r.Scan(KeySpace.Outbox, StoreKeys.OutboxPrefix(new PartitionId(2)), 1_000));

        Assert.Equal(expected.Select(Batches.Describe), scanned.Select(e => Batches.Describe(e.Key)));
        Assert.All(scanned, e => Assert.Equal(e.Key, e.Value));
    }

    [Fact]
    public async Task Scan_respects_limit_and_pages_with_start_after()
    {
        var expected = await WriteOutboxAsync();
        var prefix = StoreKeys.OutboxPrefix(new PartitionId(2));

        var pages = new List<List<KeyValuePair<byte[], byte[]>>>();
        byte[] last = [];
        while (true)
        {
            var startAfter = last;
            var page = _store.Read(r => r.Scan(KeySpace.Outbox, prefix, 7, startAfter));
            if (page.Count == 0)
            {
                break;
            }
            Assert.True(page.Count <= 7);
            pages.Add(page);
            last = page[^1].Key;
        }

        Assert.Equal(expected.Select(Batches.Describe), pages.SelectMany(p => p).Select(e => Batches.Describe(e.Key)));
        Assert.Equal([7, 7, 7, 3], pages.Select(p => p.Count));
        Assert.Empty(_store.Read(r => r.Scan(KeySpace.Outbox, prefix, 0)));
    }

    [Fact]
    public async Task Scan_with_an_empty_prefix_returns_the_whole_keyspace_in_order()
    {
        await WriteOutboxAsync();

        var all = _store.Read(r => r.Scan(KeySpace.Outbox, [], 10_000));

        Assert.Equal(3 * 24, all.Count);
        Assert.Equal(all.Select(e => e.Key).Order(ByteOrder.Instance).Select(Batches.Describe), all.Select(e => Batches.Describe(e.Key)));
        Assert.Empty(_store.Read(r => r.Scan(KeySpace.Schedule, [], 10)));
    }

    /// <summary>Outbox items of partitions 1–3, sequences 1..12 with two items each, written out of order.</summary>
    private async Task<List<byte[]>> WriteOutboxAsync()
    {
        var keys = new List<byte[]>();
        var batch = new WriteBatch();
        foreach (var seq in new ulong[] { 12, 3, 9, 10, 1, 11, 2, 4, 8, 5, 7, 6 })
        {
            foreach (var partition in new[] { 3, 1, 2 })
            {
                foreach (var index in new[] { 1, 0 })
                {
                    var key = StoreKeys.Outbox(new PartitionId(partition), seq, index);
                    batch.Put(KeySpace.Outbox, key, key);
                    if (partition == 2)
                    {
                        keys.Add(key);
                    }
                }
            }
        }
        await _store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token);
        return keys.OrderBy(k => StoreKeys.Split(k)[1], StringComparer.Ordinal).ThenBy(k => StoreKeys.Split(k)[2], StringComparer.Ordinal).ToList();
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static ByteOrder Instance { get; } = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }

    public void Dispose()
    {
        _store.Dispose();
        _cts.Dispose();
        _dir.Dispose();
    }
}
