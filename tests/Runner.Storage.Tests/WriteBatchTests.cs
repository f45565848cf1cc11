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
}
