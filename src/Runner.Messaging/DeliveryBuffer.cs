using System.Threading.Channels;

namespace Runner.Messaging;

/// <summary>
/// The buffer between a <see cref="MessageBatcher"/>'s pump and its one reader. The pump writes
/// each delivery with the attachment it came through; a batch holds deliveries of one attachment
/// only, in the order they were written, and what an attachment since ended delivered is skipped
/// when read. Only the reader takes from the buffer: an attachment that ends does not have what it
/// buffered dropped by the pump, which could take a message from between two that the reader takes,
/// leaving a batch with a hole that the caller then commits and acknowledges past.
/// </summary>
internal sealed class DeliveryBuffer<T>
    where T : class
{
    private readonly Channel<(long Attachment, T Item)> _channel;
    private long _current;

    /// <summary>The first delivery of a later attachment, met while a batch of an earlier one was read (reader only).</summary>
    private (long Attachment, T Item)? _held;

    public DeliveryBuffer(int capacity)
    {
        _channel = Channel.CreateBounded<(long, T)>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
    }

    /// <summary>Starts a new attachment: everything written before it is skipped from now on. Returns its number.</summary>
    public long Next() => Interlocked.Increment(ref _current);

    /// <summary>Writes a delivery of <paramref name="attachment"/> (the pump).</summary>
    public ValueTask WriteAsync(long attachment, T item, CancellationToken cancellationToken) =>
        _channel.Writer.WriteAsync((attachment, item), cancellationToken);

    /// <summary>Waits for a delivery of the current attachment, then takes it and what follows it of the same attachment, up to <paramref name="max"/>.</summary>
    public async ValueTask<List<T>> ReadBatchAsync(int max, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryReadBatch(max) is { } batch)
            {
                return batch;
            }
            if (!await _channel.Reader.WaitToReadAsync(cancellationToken))
            {
                throw new ChannelClosedException();
            }
        }
    }

    /// <summary>What is buffered of the current attachment, up to <paramref name="max"/>, without waiting; null when nothing is.</summary>
    public List<T>? TryReadBatch(int max)
    {
        while (TryTake(out var first))
        {
            if (first.Attachment != Volatile.Read(ref _current))
            {
                continue; // delivered by an attachment since ended: the next one delivers it again
            }
            var batch = new List<T>(Math.Min(max, 64)) { first.Item };
            while (batch.Count < max && TryTake(out var next))
            {
                if (next.Attachment != first.Attachment)
                {
                    // A later attachment's first delivery (one writer writes attachments in turn): it starts the next batch.
                    _held = next;
                    break;
                }
                batch.Add(next.Item);
            }
            return batch;
        }
        return null;
    }

    /// <summary>Empties the buffer (the reader, after <see cref="Next"/>: only to let go of what is skipped anyway).</summary>
    public void Clear()
    {
        _held = null;
        while (_channel.Reader.TryRead(out _))
        {
        }
    }

    private bool TryTake(out (long Attachment, T Item) item)
    {
        if (_held is { } held)
        {
            _held = null;
            item = held;
            return true;
        }
        return _channel.Reader.TryRead(out item);
    }
}
