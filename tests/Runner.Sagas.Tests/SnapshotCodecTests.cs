using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Sagas.Snapshots;
using Runner.Storage;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>A partition's image: the same bytes whatever room it was compressed into, and restored record for record.</summary>
public sealed class SnapshotCodecTests
{
    [Fact]
    public async Task The_image_is_the_same_bytes_whatever_size_it_was_expected_to_be_and_restores_every_record()
    {
        using var dir = new TempDirectory();
        using var source = new LmdbStore(new LmdbOptions { Path = dir.File("source") }, NullLogger<LmdbStore>.Instance);
        var partition = new PartitionId(5);
        var other = new PartitionId(6);
        var checkpointKey = StoreKeys.Checkpoint("runner-inbox-5", partition);
        var batch = new WriteBatch();
        var random = new Random(7);
        for (var i = 0; i < 3_000; i++)
        {
            var id = new InstanceId(new TenantId("acme"), new SagaName("order"), new CorrelationKey($"o{i}"));
            // Values that compress poorly, so the image is larger than a small room.
            var state = new byte[64];
            random.NextBytes(state);
            batch.Put(KeySpace.Saga, StoreKeys.Instance(partition, id), System.Text.Encoding.UTF8.GetBytes($"{{\"n\":\"{Convert.ToHexString(state)}\"}}"));
            batch.Put(KeySpace.History, StoreKeys.History(partition, id, 1), "{\"v\":1}"u8.ToArray());
            batch.Put(KeySpace.Saga, StoreKeys.Instance(other, id), "{\"elsewhere\":true}"u8.ToArray());
        }
        batch.Put(KeySpace.Checkpoint, checkpointKey, "4242"u8.ToArray());
        await source.Writer.CommitAsync(batch, CancellationToken.None);

        var unsized = SnapshotCodec.Capture(source, partition, 3, checkpointKey);
        Assert.Equal(6_001, unsized.Records);
        Assert.Equal(3_000, unsized.Instances);
        Assert.Equal(4242UL, unsized.Sequence);
        Assert.True(unsized.Bytes.Length > 64 * 1024, $"image of {unsized.Bytes.Length} bytes: too small to outgrow the small room below");
        foreach (var expected in new[] { 100, unsized.Bytes.Length, unsized.Bytes.Length * 4 })
        {
            var sized = SnapshotCodec.Capture(source, partition, 3, checkpointKey, expected);
            Assert.Equal(unsized.Bytes, sized.Bytes);
            Assert.Equal(unsized.Sha256, sized.Sha256);
        }

        using var target = new LmdbStore(new LmdbOptions { Path = dir.File("target") }, NullLogger<LmdbStore>.Instance);
        var restored = await SnapshotCodec.RestoreAsync(target, partition, unsized.Bytes,
            new ExpectedSnapshot(unsized.Sequence, unsized.Epoch, unsized.Bytes.Length, unsized.Sha256), CancellationToken.None);
        Assert.Equal(6_001, restored);
        var prefix = SnapshotCodec.Prefix(partition);
        foreach (var space in new[] { KeySpace.Saga, KeySpace.History })
        {
            var before = source.Read(r => r.Scan(space, prefix, int.MaxValue));
            var after = target.Read(r => r.Scan(space, prefix, int.MaxValue));
            Assert.Equal(before.Count, after.Count);
            Assert.Equal(
                Convert.ToHexString(SHA256.HashData([.. before.SelectMany(p => p.Key.Concat(p.Value))])),
                Convert.ToHexString(SHA256.HashData([.. after.SelectMany(p => p.Key.Concat(p.Value))])));
        }
        Assert.Empty(target.Read(r => r.Scan(KeySpace.Saga, SnapshotCodec.Prefix(other), int.MaxValue)));
    }
}
