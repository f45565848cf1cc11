using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Which nats-server versions replay a purge of a replicated stream as a compaction when they restart.</summary>
public sealed class NatsServerVersionsTests
{
    [Theory]
    [InlineData("2.9.10", true)]
    [InlineData("v2.9.10", true)]
    [InlineData("2.9.17", true)]
    [InlineData("2.8.4", true)]
    [InlineData("1.4.1", true)]
    [InlineData("2.9.18", false)]
    [InlineData("2.9.25", false)]
    [InlineData("2.10.0", false)]
    [InlineData("2.10.0-RC.3", false)]
    [InlineData("2.11.4+build", false)]
    [InlineData("3.0.0", false)]
    public void The_releases_before_the_fix_are_named(string version, bool replays) =>
        Assert.Equal(replays, NatsServerVersions.ReplaysPurgeAsCompaction(version));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("unknown")]
    [InlineData("2.10")]
    [InlineData("2.x.1")]
    public void A_version_that_cannot_be_read_counts_as_affected_so_nothing_is_purged(string? version) =>
        Assert.True(NatsServerVersions.ReplaysPurgeAsCompaction(version));
}
