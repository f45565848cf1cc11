using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// The buffer between a batcher's pump and its reader: a batch is a run of consecutive deliveries
/// of one attachment, and what an ended attachment buffered is never read.
/// </summary>
public sealed class DeliveryBufferTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    private sealed record Delivery(long Attachment, int Index);

    private CancellationToken Token => _timeout.Token;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task What_an_ended_attachment_buffered_is_skipped_and_the_next_one_is_read_from_its_first_delivery()
    {
        var buffer = new DeliveryBuffer<Delivery>(16);
        var first = buffer.Next();
        for (var i = 0; i < 5; i++)
        {
            await buffer.WriteAsync(first, new Delivery(first, i), Token);
        }
        Assert.Equal([0, 1], buffer.TryReadBatch(2)!.Select(d => d.Index));

        var second = buffer.Next();
        Assert.Null(buffer.TryReadBatch(10)); // 2, 3 and 4 of the ended attachment: skipped, not read
        for (var i = 0; i < 3; i++)
        {
            await buffer.WriteAsync(second, new Delivery(second, i), Token);
        }
        var batch = await buffer.ReadBatchAsync(10, Token);
        Assert.Equal([(second, 0), (second, 1), (second, 2)], batch.Select(d => (d.Attachment, d.Index)));
    }

    [Fact]
    public async Task Cleared_the_buffer_holds_nothing_and_a_waiting_read_waits_for_the_next_attachment()
    {
        var buffer = new DeliveryBuffer<Delivery>(16);
        var first = buffer.Next();
        await buffer.WriteAsync(first, new Delivery(first, 0), Token);
        buffer.Next();
        buffer.Clear();
        var read = buffer.ReadBatchAsync(10, Token);
        await Task.Delay(50, Token);
        Assert.False(read.IsCompleted);

        var third = buffer.Next();
        await buffer.WriteAsync(third, new Delivery(third, 0), Token);
        Assert.Equal([(third, 0)], (await read).Select(d => (d.Attachment, d.Index)));
    }

    [Fact]
    public async Task Read_while_attachments_end_every_batch_is_consecutive_deliveries_of_one_attachment()
    {
        // A pump that ends an attachment after a few deliveries, over and over, while the reader takes batches as
        // fast as it can: no batch loses, repeats or reorders a delivery, and the last attachment is read whole.
        const int Attachments = 2_000;
        var buffer = new DeliveryBuffer<Delivery>(32);
        var random = new Random(7);
        var sizes = Enumerable.Range(0, Attachments).Select(_ => random.Next(1, 40)).ToArray();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Token);
        cts.CancelAfter(TimeSpan.FromSeconds(60));
        var pump = Task.Run(async () =>
        {
            for (var a = 0; a < Attachments; a++)
            {
                var number = buffer.Next(); // 1, 2, …: the last one is Attachments
                for (var i = 0; i < sizes[a]; i++)
                {
                    await buffer.WriteAsync(number, new Delivery(number, i), cts.Token);
                }
            }
        }, cts.Token);

        var batches = 0;
        var lastOfFinal = -1;
        while (lastOfFinal < sizes[^1] - 1)
        {
            var batch = await buffer.ReadBatchAsync(8, cts.Token);
            batches++;
            for (var i = 1; i < batch.Count; i++)
            {
                Assert.Equal(batch[0].Attachment, batch[i].Attachment);
                Assert.Equal(batch[i - 1].Index + 1, batch[i].Index);
            }
            if (batch[0].Attachment == Attachments)
            {
                // Nothing ends the last attachment: all of it is read, in order.
                Assert.Equal(lastOfFinal + 1, batch[0].Index);
                lastOfFinal = batch[^1].Index;
            }
        }
        await pump;
        Assert.True(batches > 1);
    }
}
