using Runner.Core.Keys;
using Runner.Storage;

namespace Runner.Storage.Tests;

/// <summary>A batch's pooled room for its values: each value taken stays as written, whatever chunk it began in.</summary>
public sealed class ValueArenaTests
{
    [Fact]
    public void Every_value_taken_keeps_its_bytes_across_chunks_and_values_larger_than_a_chunk()
    {
        using var arena = new ValueArena();
        var random = new Random(7);
        var expected = new List<byte[]>();
        var taken = new List<ReadOnlyMemory<byte>>();
        for (var i = 0; i < 2_000; i++)
        {
            var value = new byte[i % 97 == 0 ? 40_000 : random.Next(0, 3_000)];
            random.NextBytes(value);
            // Written in pieces, as a JSON writer does: each asks for room, fills some of it, advances.
            var at = 0;
            while (at < value.Length)
            {
                var piece = Math.Min(value.Length - at, random.Next(1, 700));
                var span = arena.GetSpan(piece);
                Assert.True(span.Length >= piece);
                value.AsSpan(at, piece).CopyTo(span);
                arena.Advance(piece);
                at += piece;
            }
            expected.Add(value);
            taken.Add(arena.Take());
        }

        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i].AsSpan().SequenceEqual(taken[i].Span), $"value {i} changed");
        }
    }

    [Fact]
    public void Advancing_past_the_room_given_is_refused()
    {
        using var arena = new ValueArena();
        var room = arena.GetSpan(10).Length;
        Assert.Throws<InvalidOperationException>(() => arena.Advance(room + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.Advance(-1));
    }

    [Fact]
    public async Task A_batch_commits_values_from_the_arena_as_written()
    {
        using var dir = new StoreDirectory();
        using var store = dir.Open();
        using var arena = new ValueArena();
        var batch = new WriteBatch();
        for (var i = 0; i < 100; i++)
        {
            var span = arena.GetSpan(1_000);
            span[..1_000].Fill((byte)i);
            arena.Advance(1_000);
            batch.Put(KeySpace.Saga, [(byte)i], arena.Take());
        }

        using var cts = new CancellationTokenSource(Batches.Timeout);
        await store.Writer.CommitAsync(batch, cts.Token);

        Batches.AssertCommitted(store, batch);
        Assert.Equal(100, store.Read(r => r.Count(KeySpace.Saga)));
    }
}
