using System.Diagnostics;

namespace Runner.Slice.Engine;

/// <summary>
/// One stage's figures, written with the result: records in and out, records dropped by reason,
/// the depth of its input channel (sampled per batch), and the time it spent per batch. Each
/// stage updates its own from its one thread; readers see a recent value.
/// </summary>
internal sealed class StageMetrics(string name)
{
    private readonly Dictionary<string, long> _dropped = new(StringComparer.Ordinal);
    private long _recordsIn;
    private long _recordsOut;
    private long _batches;
    private long _busyTicks;
    private long _maxBatchTicks;
    private long _depthSum;
    private int _maxDepth;

    public string Name { get; } = name;

    public long RecordsIn => Volatile.Read(ref _recordsIn);

    public long RecordsOut => Volatile.Read(ref _recordsOut);

    public long Batches => Volatile.Read(ref _batches);

    public int MaxInputDepth => _maxDepth;

    public double MeanInputDepth => Batches == 0 ? 0 : (double)_depthSum / Batches;

    public double BusyMs => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _busyTicks)).TotalMilliseconds;

    public double MeanBatchMs => Batches == 0 ? 0 : BusyMs / Batches;

    public double MaxBatchMs => Stopwatch.GetElapsedTime(0, _maxBatchTicks).TotalMilliseconds;

    public IReadOnlyDictionary<string, long> Dropped
    {
        get
        {
            lock (_dropped)
            {
                return new Dictionary<string, long>(_dropped, StringComparer.Ordinal);
            }
        }
    }

    public void In(long count) => Volatile.Write(ref _recordsIn, _recordsIn + count);

    public void Out(long count) => Volatile.Write(ref _recordsOut, _recordsOut + count);

    public void Drop(string reason, long count = 1)
    {
        lock (_dropped)
        {
            _dropped[reason] = _dropped.GetValueOrDefault(reason) + count;
        }
    }

    /// <summary>One batch handled: how deep the input channel was when it arrived, and since when it was worked on.</summary>
    public void Batch(int inputDepth, long startedTimestamp)
    {
        var ticks = Stopwatch.GetTimestamp() - startedTimestamp;
        _busyTicks += ticks;
        _maxBatchTicks = Math.Max(_maxBatchTicks, ticks);
        _depthSum += inputDepth;
        _maxDepth = Math.Max(_maxDepth, inputDepth);
        Volatile.Write(ref _batches, _batches + 1);
    }
}
