using System.Collections.Concurrent;

namespace Runner.Slice.Engine;

/// <summary>Batches for reuse: a run holds only as many as are in flight between its stages.</summary>
internal sealed class BatchPool
{
    private readonly ConcurrentQueue<RecordBatch> _free = new();
    private int _created;

    /// <summary>How many batches the run has allocated (bounded by its channels).</summary>
    public int Created => Volatile.Read(ref _created);

    public RecordBatch Rent()
    {
        if (_free.TryDequeue(out var batch))
        {
            return batch;
        }
        Interlocked.Increment(ref _created);
        return new RecordBatch();
    }

    public void Return(RecordBatch batch)
    {
        batch.Clear();
        _free.Enqueue(batch);
    }
}
