using Runner.Sagas.Ownership;
using Runner.Sagas.Partitions;
using Runner.Sagas.Snapshots;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The pure changes a partition owner makes to its lease record: versions recorded, snapshots referenced.</summary>
public sealed class LeaseRecordTests
{
    private static LeaseRecord Record(params (ulong From, string Manifest)[] versions) => new()
    {
        State = LeaseRecord.Held,
        Versions = [.. versions.Select(v => new VersionRange { From = v.From, Manifest = v.Manifest })],
    };

    private static SnapshotRef Snapshot(ulong sequence) => new() { Name = $"s{sequence}", Sequence = sequence, Sha256 = "x" };

    [Fact]
    public void Recording_a_version_again_changes_nothing_so_a_write_whose_reply_was_lost_can_be_retried()
    {
        var once = PartitionVersions.Append(Record((1, "v1")), 50, "v2");
        var twice = PartitionVersions.Append(once, 60, "v2");
        Assert.Equal([(1UL, "v1"), (50UL, "v2")], twice.Versions.Select(v => (v.From, v.Manifest)));
    }

    [Fact]
    public void The_first_snapshot_purges_nothing_and_keeps_every_version_a_replay_from_the_start_needs()
    {
        var record = PartitionSnapshots.Reference(Record((1, "v1"), (500, "v2")), Snapshot(1000));
        Assert.Equal(0UL, record.PurgedBelow);
        Assert.Equal(["v1", "v2"], record.Versions.Select(v => v.Manifest));
    }

    [Fact]
    public void A_second_snapshot_purges_below_the_first_and_drops_only_versions_before_it()
    {
        var first = PartitionSnapshots.Reference(Record((1, "v1"), (500, "v2"), (1500, "v3")), Snapshot(1000));
        var second = PartitionSnapshots.Reference(first, Snapshot(2000));
        Assert.Equal(["s2000", "s1000"], second.Snapshots.Select(s => s.Name));
        Assert.Equal(1001UL, second.PurgedBelow);
        // 1001..1499 run with v2, later ones with v3: v1 is needed by no retained message.
        Assert.Equal([(500UL, "v2"), (1500UL, "v3")], second.Versions.Select(v => (v.From, v.Manifest)));
        Assert.Same(second, PartitionSnapshots.Reference(second, Snapshot(2000)));
    }

    [Fact]
    public void Without_purging_snapshots_are_referenced_but_nothing_is_marked_purgeable_and_every_version_stays()
    {
        var first = PartitionSnapshots.Reference(Record((1, "v1"), (500, "v2"), (1500, "v3")), Snapshot(1000), purge: false);
        var second = PartitionSnapshots.Reference(first, Snapshot(2000), purge: false);
        Assert.Equal(["s2000", "s1000"], second.Snapshots.Select(s => s.Name));
        Assert.Equal(0UL, second.PurgedBelow);
        Assert.Equal(["v1", "v2", "v3"], second.Versions.Select(v => v.Manifest));
    }

    [Theory]
    [InlineData(0, 0UL, 1L)]
    [InlineData(7, 123456UL, 42L)]
    [InlineData(99999, ulong.MaxValue, long.MaxValue)]
    public void A_snapshot_name_gives_back_its_sequence_and_epoch(int partition, ulong sequence, long epoch)
    {
        var name = SnapshotStore.Name(new Core.Ids.PartitionId(partition), sequence, epoch);
        Assert.True(SnapshotStore.TryParseName(name, out var readSequence, out var readEpoch));
        Assert.Equal((sequence, epoch), (readSequence, readEpoch));
    }

    [Theory]
    [InlineData("")]
    [InlineData("manifest-abc")]
    [InlineData("00001-00000000000000000012-12")]
    [InlineData("00001-00000000000000000012-e")]
    [InlineData("00001-x-e3")]
    [InlineData("0001-00000000000000000012-e3")]
    public void Other_names_in_the_snapshot_store_are_not_taken_for_snapshots(string name) =>
        Assert.False(SnapshotStore.TryParseName(name, out _, out _));
}
