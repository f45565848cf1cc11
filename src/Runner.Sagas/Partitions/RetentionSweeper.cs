using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Runner.Core;
using Runner.Core.Keys;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Deletes what retention says is gone, a page at a time, so the store does not grow with every
/// event and instance ever seen:
/// <list type="bullet">
/// <item>dedupe markers: a marker stands for <see cref="SagaRuntimeOptions.DedupeRetention"/> in
/// the inbox's own time (see <c>PartitionWorker.Remembered</c>), so one is deleted only once the
/// partition has applied a message stored a retention after it: every later message is later still;</item>
/// <item>done instances with their history, after <see cref="SagaRuntimeOptions.DoneRetention"/>,
/// by the same rule (see <c>PartitionWorker.Expired</c>); each delete is conditional on the record
/// being the one read, so an instance the worker has just started again under that key stays;</item>
/// <item>quarantine records, after <see cref="SagaRuntimeOptions.QuarantineRetention"/> of wall clock.</item>
/// </list>
/// The worker already treats an expired marker or instance as absent, so sweeping early or late
/// changes no outcome, on this replica or on one that replays.
/// </summary>
/// <param name="owned">Each partition this replica runs, with the inbox time of the last message it applied (0: none yet).</param>
internal sealed class RetentionSweeper(LmdbStore store, SagaRuntimeOptions options, ILogger logger, TimeProvider time, Func<IReadOnlyList<(Core.Ids.PartitionId Partition, long InboxMs)>> owned)
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

    /// <summary>One pass; returns how many dedupe markers, instances (with their history) and quarantine records were deleted.</summary>
    public async Task<(int Markers, int Instances, int Quarantined)> SweepOnceAsync(CancellationToken cancellationToken)
    {
        int markers = 0, instances = 0;
        foreach (var (partition, inboxMs) in owned())
        {
            if (inboxMs <= 0)
            {
                continue;
            }
            var prefix = Snapshots.SnapshotCodec.Prefix(partition);
            var markerCutoff = inboxMs - (long)options.DedupeRetention.TotalMilliseconds;
            markers += await SweepAsync(KeySpace.Dedupe, prefix, (key, value, batch) =>
            {
                var record = JsonSerializer.Deserialize(value, CoreJsonContext.Default.DedupeRecord);
                if (record is not null && record.CommittedAtMs > 0 && record.CommittedAtMs <= markerCutoff)
                {
                    batch.Delete(KeySpace.Dedupe, key);
                    return true;
                }
                return false;
            }, cancellationToken);
            var doneCutoff = inboxMs - (long)options.DoneRetention.TotalMilliseconds;
            instances += await SweepAsync(KeySpace.Saga, prefix, (key, value, batch) =>
            {
                var record = JsonSerializer.Deserialize(value, CoreJsonContext.Default.SagaInstanceRecord);
                if (record is { Done: true, ClosedAtInboxMs: > 0 } && record.ClosedAtInboxMs <= doneCutoff)
                {
                    // The instance key is partition␟tenant␟saga␟key; its history keys extend it by ␟version.
                    batch.DeleteIfUnchanged(KeySpace.Saga, key, value, KeySpace.History, [.. key, (byte)StoreKeys.Separator]);
                    return true;
                }
                return false;
            }, cancellationToken);
        }
        var quarantineCutoff = time.GetUtcNow().ToUnixTimeMilliseconds() - (long)options.QuarantineRetention.TotalMilliseconds;
        var quarantined = await SweepAsync(KeySpace.Quarantine, [], (key, _, batch) =>
        {
            if (QuarantineTimeMs(key) is { } at && at <= quarantineCutoff)
            {
                batch.Delete(KeySpace.Quarantine, key);
                return true;
            }
            return false;
        }, cancellationToken);
        if (markers + instances + quarantined > 0)
        {
            SagasLog.RetentionSwept(logger, markers, instances, quarantined);
        }
        return (markers, instances, quarantined);
    }

    /// <summary>The time component of a quarantine key (tenant␟partition␟time␟…), or null when it has none.</summary>
    internal static long? QuarantineTimeMs(ReadOnlySpan<byte> key)
    {
        var parts = Encoding.UTF8.GetString(key).Split(StoreKeys.Separator);
        return parts.Length >= 3 && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : null;
    }

    private delegate bool Decide(byte[] key, byte[] value, WriteBatch batch);

    private async Task<int> SweepAsync(KeySpace space, byte[] prefix, Decide decide, CancellationToken cancellationToken)
    {
        byte[]? cursor = null;
        var deleted = 0;
        while (true)
        {
            var after = cursor;
            var page = store.Read(reader => reader.Scan(space, prefix, Page, after));
            var batch = new WriteBatch();
            foreach (var (key, value) in page)
            {
                if (decide(key, value, batch))
                {
                    deleted++;
                }
            }
            if (batch.Count > 0)
            {
                await store.Writer.CommitAsync(batch, cancellationToken);
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
