using Runner.Core.Keys;
using Runner.Storage;
using Xunit;

namespace Runner.Storage.Tests;

public sealed class WriteBatchTests
{
    [Fact]
    public void TruncateTo_drops_the_later_ops_and_their_bytes()
    {
        var batch = new WriteBatch();
        batch.Put(KeySpace.Saga, [1, 2], new byte[] { 3, 4, 5 });
        var mark = batch.Count;
        var bytes = batch.Bytes;
        batch.Put(KeySpace.Outbox, [6], new byte[] { 7, 8 });
        batch.Delete(KeySpace.Schedule, [9, 9, 9]);

        batch.TruncateTo(mark);

        Assert.Equal(1, batch.Count);
        Assert.Equal(bytes, batch.Bytes);
        Assert.Equal(KeySpace.Saga, Assert.Single(batch.Ops).Space);
    }

    [Fact]
    public void A_batch_grows_past_its_room_in_order_and_after_its_room_is_returned_starts_empty()
    {
        var batch = new WriteBatch(capacity: 3);
        for (byte i = 0; i < 40; i++)
        {
            batch.Put(KeySpace.History, [i], new byte[] { i, i });
        }

        Assert.Equal(40, batch.Count);
        Assert.Equal(40 * 3, batch.Bytes);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (byte)i), batch.Ops.Select(o => o.Key[0]));

        batch.ReturnRoom();

        Assert.Equal(0, batch.Count);
        Assert.Equal(0, batch.Bytes);
        Assert.Equal(0, batch.Ops.Count);
        batch.Delete(KeySpace.Saga, [7]);
        Assert.Equal(7, Assert.Single(batch.Ops).Key[0]);
    }

    [Fact]
    public void Ops_dropped_are_no_longer_held_by_the_room_and_a_mark_past_the_end_is_refused()
    {
        var batch = new WriteBatch(capacity: 4);
        batch.Put(KeySpace.Saga, [1], new byte[] { 1 });
        batch.Put(KeySpace.Saga, [2], new byte[] { 2 });
        var room = batch.Ops.Array!;

        batch.TruncateTo(1);

        Assert.Null(room[1].Key);
        Assert.Equal(1, room[0].Key[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.TruncateTo(2));
    }
}
