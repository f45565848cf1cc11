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
internal sealed class DedupeSweeper(LmdbStore store, SagaRuntimeOptions options, ILogger logger, TimeProvider time)
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

    /// <summary>One pass over the dedupe keyspace; returns how many markers were deleted.</summary>
    public async Task<int> SweepOnceAsync(CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().Add(-options.DedupeRetention).ToUnixTimeMilliseconds();
        byte[]? cursor = null;
        var deleted = 0;
        while (true)
        {
            var after = cursor;
            var page = store.Read(reader => reader.Scan(KeySpace.Dedupe, [], Page, after));
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
        if (deleted > 0)
        {
            SagasLog.DedupeSwept(logger, deleted);
        }
        return deleted;
    }
}
