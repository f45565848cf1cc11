using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Snapshots;
using Runner.Storage;

namespace Runner.Bench.ScaleOut;

/// <summary>(3)'s partition straight in LMDB, and the snapshot codec on it alone.</summary>
internal sealed partial class ScaleOutBench
{
    /// <summary>Writes one instance and one dedupe marker per key into the partition, as the worker would have; returns the seconds it took.</summary>
    private async Task<double> SeedAsync(LmdbStore store, PartitionId partition, List<int> keys, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var state = JsonDocument.Parse("""{"count":1}""").RootElement.Clone();
        var started = Stopwatch.GetTimestamp();
        for (var start = 0; start < keys.Count; start += 5_000)
        {
            var batch = new WriteBatch();
            foreach (var k in keys.Skip(start).Take(5_000))
            {
                var id = "seed-" + k.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var instance = new InstanceId(new TenantId(Wire.Tenant), new SagaName(Wire.Saga), new CorrelationKey("k" + k.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                var record = new SagaInstanceRecord { State = state, Version = 1, CreatedAtMs = now, UpdatedAtMs = now, LastEventId = id, ManifestHash = _manifests.Hash };
                batch.Put(KeySpace.Saga, StoreKeys.Instance(partition, instance), JsonSerializer.SerializeToUtf8Bytes(record, CoreJsonContext.Default.SagaInstanceRecord));
                batch.Put(KeySpace.Dedupe, StoreKeys.Dedupe(partition, instance, id), JsonSerializer.SerializeToUtf8Bytes(
                    new DedupeRecord { InboxSequence = 0, Outcome = DedupeRecord.Applied, AtMs = now, CommittedAtMs = now }, CoreJsonContext.Default.DedupeRecord));
            }
            await store.Writer.CommitAsync(batch, cancellationToken);
        }
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>
    /// What the partition's records weigh, and what the same records Brotli-compressed at the
    /// codec's level through a 64 KiB buffer weigh (the codec writes each length and field into
    /// the Brotli stream on its own), next to the image the product stored.
    /// </summary>
    private void PrintCompression(LmdbStore store, PartitionId partition, long imageBytes)
    {
        long raw = 0;
        var started = Stopwatch.GetTimestamp();
        using var output = new MemoryStream();
        using (var brotli = new BrotliStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var buffered = new BufferedStream(brotli, 64 * 1024))
        {
            store.Read(reader =>
            {
                foreach (var space in SnapshotCodec.Spaces)
                {
                    reader.Visit(space, SnapshotCodec.Prefix(partition), (key, value) =>
                    {
                        raw += key.Length + value.Length;
                        buffered.WriteByte((byte)space);
                        buffered.Write(key);
                        buffered.Write(value);
                    });
                }
                return 0;
            });
        }
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        _output.WriteLine(Text.Inv($"  the partition's records: {raw / 1024.0 / 1024.0:F2} MiB of keys and values; the stored image is {imageBytes / (double)Math.Max(1, raw):F2} of that"));
        _output.WriteLine(Text.Inv($"    the same records through a 64 KiB buffer into Brotli (Fastest): {output.Length / 1024.0 / 1024.0:F2} MiB ({output.Length / (double)Math.Max(1, raw):F3} of raw) in {ms:F0} ms, read included"));
    }

    /// <summary>The codec alone: capture, put, download, restore into an empty store. Returns download + restore seconds.</summary>
    private async Task<double> CodecAsync(LmdbStore source, PartitionId partition, Sagas.SagaRuntimeOptions options, int run, int count, double baseline, CancellationToken cancellationToken)
    {
        var objects = await SnapshotStore.OpenAsync(_js, options.SnapshotBucket, 1, cancellationToken);
        var jit = System.Runtime.JitInfo.GetCompiledMethodCount();
        var checkpointKey = StoreKeys.Checkpoint(options.PartitionConsumer(partition.Value), partition);
        var t0 = Stopwatch.GetTimestamp();
        var image = SnapshotCodec.Capture(source, partition, 1_000 + run, checkpointKey);
        var t1 = Stopwatch.GetTimestamp();
        var name = Text.Inv($"bench-restore-{run}");
        await objects.PutAsync(name, image.Bytes, DateTimeOffset.UnixEpoch, cancellationToken);
        var t2 = Stopwatch.GetTimestamp();
        var bytes = await objects.GetAsync(name, cancellationToken) ?? throw new InvalidOperationException("the image just stored is not in the object store");
        var t3 = Stopwatch.GetTimestamp();
        var dir = _dir.File(Text.Inv($"restore-empty-{run}"));
        long records, instances;
        double restoreSeconds;
        using (var empty = new LmdbStore(new LmdbOptions { Path = dir, Durable = _options.Durable }, NullLogger<LmdbStore>.Instance))
        {
            records = await SnapshotCodec.RestoreAsync(empty, partition, bytes, new ExpectedSnapshot(image.Sequence, image.Epoch, image.Bytes.Length, image.Sha256), cancellationToken);
            restoreSeconds = Stopwatch.GetElapsedTime(t3).TotalSeconds;
            instances = empty.Read(reader => reader.Visit(KeySpace.Saga, SnapshotCodec.Prefix(partition), (_, _) => { }));
        }
        Directory.Delete(dir, recursive: true);
        await objects.DeleteAsync(name, cancellationToken);
        var total = Stopwatch.GetElapsedTime(t2, t3).TotalSeconds + restoreSeconds;
        var warmth = run == 1 ? "cold: the first image of this size in this process" : "warm: the same again";
        _output.WriteLine(Text.Inv($"  codec alone, run {run} ({warmth}): image {image.Bytes.Length / 1024.0 / 1024.0:F2} MiB, {image.Records} records, {image.Instances} instances"));
        _output.WriteLine(Text.Inv($"    capture {Ms(t0, t1),6:F0} ms   put {Ms(t1, t2),6:F0} ms   download {Ms(t2, t3),6:F0} ms   restore into an empty store {restoreSeconds * 1000,6:F0} ms ({records} records, {instances} instances read back{(instances == image.Instances ? string.Empty : "  MISMATCH")})"));
        _output.WriteLine(Text.Inv($"    download + restore {total:F2} s → {count / total:F0} instances/s; restore writes {records / restoreSeconds:F0} records/s = {records / restoreSeconds / (2 * count / baseline):F2} × the baseline's raw writes; JIT compiled {System.Runtime.JitInfo.GetCompiledMethodCount() - jit} methods"));
        return total;
    }
}
