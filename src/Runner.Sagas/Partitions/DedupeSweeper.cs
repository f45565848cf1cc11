using System.Text.Json;
using Microsoft.Extensions.Logging;
using Runner.Core;
using Runner.Core.Keys;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Deletes dedupe markers older than <see cref="SagaRuntimeOptions.DedupeRetention"/>, a page at a
/// time, so the store does not grow with every event ever seen. Markers are only a second line of
/// defence behind the partition checkpoint; retention bounds how late a re-sent event is still
/// recognised as a copy.
/// </summary>
internal sealed class DedupeSweeper(LmdbStore store, SagaRuntimeOptions options, ILogger logger, TimeProvider time, Func<IReadOnlyList<Core.Ids.PartitionId>>? owned = null)
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

    /// <summary>One pass over the dedupe markers of the owned partitions (of all, without an owner list); returns how many were deleted.</summary>
    public async Task<int> SweepOnceAsync(CancellationToken cancellationToken)
    {
        var deleted = 0;
        if (owned is null)
        {
            deleted = await SweepAsync([], cancellationToken);
        }
        else
        {
            foreach (var partition in owned())
            {
                deleted += await SweepAsync(Snapshots.SnapshotCodec.Prefix(partition), cancellationToken);
            }
        }
        if (deleted > 0)
        {
            SagasLog.DedupeSwept(logger, deleted);
        }
        return deleted;
    }

    private async Task<int> SweepAsync(byte[] prefix, CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().Add(-options.DedupeRetention).ToUnixTimeMilliseconds();
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
                if (record is not null && record.CommittedAtMs > 0 && record.CommittedAtMs < cutoff)
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
