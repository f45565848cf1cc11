using System.Text.Json;
using Microsoft.Extensions.Logging;
using Runner.Core;
using Runner.Core.Keys;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Deletes dedupe markers that can no longer stop anything, a page at a time, so the store does
/// not grow with every event ever seen. A marker stands for <see cref="SagaRuntimeOptions.DedupeRetention"/>
/// in the inbox's own time (see <c>PartitionWorker.Remembered</c>), so one is deleted only once the
/// partition has applied a message stored a retention after it: every later message is later still.
/// Sweeping early or late therefore changes no outcome, on this replica or on one that replays.
/// </summary>
/// <param name="owned">Each partition this replica runs, with the inbox time of the last message it applied (0: none yet).</param>
internal sealed class DedupeSweeper(LmdbStore store, SagaRuntimeOptions options, ILogger logger, TimeProvider time, Func<IReadOnlyList<(Core.Ids.PartitionId Partition, long InboxMs)>> owned)
{
    private const int Page = 4096;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await SweepOnceAsync(cancellationToken);
            await Task.Delay(options.DedupeSweepInterval, time, cancellationToken);
        }
    }

    /// <summary>One pass over the dedupe markers of the owned partitions; returns how many were deleted.</summary>
    public async Task<int> SweepOnceAsync(CancellationToken cancellationToken)
    {
        var deleted = 0;
        foreach (var (partition, inboxMs) in owned())
        {
            if (inboxMs > 0)
            {
                deleted += await SweepAsync(Snapshots.SnapshotCodec.Prefix(partition), inboxMs - (long)options.DedupeRetention.TotalMilliseconds, cancellationToken);
            }
        }
        if (deleted > 0)
        {
            SagasLog.DedupeSwept(logger, deleted);
        }
        return deleted;
    }

    private async Task<int> SweepAsync(byte[] prefix, long cutoff, CancellationToken cancellationToken)
    {
        byte[]? cursor = null;
        var deleted = 0;
        while (true)
        {
            var after = cursor;
            var page = store.Read(reader => reader.Scan(KeySpace.Dedupe, prefix, Page, after));
            var batch = new WriteBatch();
            foreach (var (key, value) in page)
            {
                var record = JsonSerializer.Deserialize(value, CoreJsonContext.Default.DedupeRecord);
                if (record is not null && record.CommittedAtMs > 0 && record.CommittedAtMs <= cutoff)
                {
                    batch.Delete(KeySpace.Dedupe, key);
                }
            }
            if (batch.Count > 0)
            {
                await store.Writer.CommitAsync(batch, cancellationToken);
                deleted += batch.Count;
            }
            if (page.Count < Page)
            {
                break;
            }
            cursor = page[^1].Key;
        }
        return deleted;
    }
}
