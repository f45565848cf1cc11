using System.Diagnostics;
using Runner.Sagas.Partitions;

namespace Runner.Bench.ScaleOut;

/// <summary>
/// A replica's committed transitions: how many, and when each partition committed a batch
/// (<see cref="Stopwatch.GetTimestamp"/>), so the bench can tell when a partition was serving again.
/// </summary>
internal sealed class CommitLog : ITransitionListener
{
    private const int MaxPerPartition = 100_000;
    private readonly Lock _gate = new();
    private readonly Dictionary<int, List<long>> _batches = [];
    private long _total;
    private long _last;

    public long Total => Interlocked.Read(ref _total);

    /// <summary>When the last batch was committed (0 before any).</summary>
    public long Last => Interlocked.Read(ref _last);

    public void OnCommitted(IReadOnlyList<TransitionNotice> notices)
    {
        if (notices.Count == 0)
        {
            return;
        }
        var now = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            foreach (var partition in notices.Select(n => n.Partition.Value).Distinct())
            {
                if (!_batches.TryGetValue(partition, out var list))
                {
                    _batches[partition] = list = [];
                }
                if (list.Count < MaxPerPartition)
                {
                    list.Add(now);
                }
            }
        }
        Interlocked.Add(ref _total, notices.Count);
        Interlocked.Exchange(ref _last, now);
    }

    /// <summary>The first commit of <paramref name="partition"/> at or after <paramref name="since"/>, if any.</summary>
    public long? FirstAfter(int partition, long since)
    {
        lock (_gate)
        {
            if (!_batches.TryGetValue(partition, out var list))
            {
                return null;
            }
            foreach (var at in list)
            {
                if (at >= since)
                {
                    return at;
                }
            }
            return null;
        }
    }
}
