using Runner.Slices.Cgroups;
using Runner.Testing;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>
/// Production hosts run cgroup v2, this machine has no v2 controllers: the v2 file protocol is
/// checked against a directory laid out as the kernel lays out a cgroup.
/// </summary>
public sealed class CgroupV2Tests : IDisposable
{
    private readonly TempDirectory _root = new("runner-fake-cgroup");

    public void Dispose() => _root.Dispose();

    [Fact]
    public void Creating_a_slice_cgroup_writes_cpu_max_memory_max_no_swap_and_pids_max()
    {
        var tree = new CgroupV2(_root.Path, "runner-slices", TimeProvider.System);
        var directory = Path.Combine(_root.Path, "runner-slices", "s-1");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "memory.swap.max"), "max");

        var group = tree.Create("s-1", new CgroupLimits(0.25, 268_435_456, 64));

        Assert.Equal("25000 100000", File.ReadAllText(Path.Combine(directory, "cpu.max")));
        Assert.Equal("268435456", File.ReadAllText(Path.Combine(directory, "memory.max")));
        Assert.Equal("0", File.ReadAllText(Path.Combine(directory, "memory.swap.max")));
        Assert.Equal("64", File.ReadAllText(Path.Combine(directory, "pids.max")));
        Assert.Equal([Path.Combine(directory, "cgroup.procs")], group.ProcsFiles);
    }

    [Fact]
    public void Usage_comes_from_cpu_stat_memory_peak_memory_events_and_pids_events()
    {
        var tree = new CgroupV2(_root.Path, "runner-slices", TimeProvider.System);
        var group = tree.Create("s-2", new CgroupLimits(2, 1 << 30, 128));
        var directory = Path.Combine(_root.Path, "runner-slices", "s-2");
        File.WriteAllText(Path.Combine(directory, "cpu.stat"), "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 40\nnr_throttled 12\nthrottled_usec 456789\n");
        File.WriteAllText(Path.Combine(directory, "memory.peak"), "73400320\n");
        File.WriteAllText(Path.Combine(directory, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        File.WriteAllText(Path.Combine(directory, "pids.events"), "max 0\n");

        var usage = group.ReadUsage();

        // Throttled time rounds up (456,789 µs reads 457 ms), so any throttling shows.
        Assert.Equal(new CgroupUsage(1234, 73_400_320, OomKilled: true, PidsLimited: false, CpuThrottledMs: 457), usage);
    }

    [Fact]
    public async Task Killing_writes_cgroup_kill_and_removal_deletes_the_directory()
    {
        var tree = new CgroupV2(_root.Path, "runner-slices", TimeProvider.System);
        var directory = Path.Combine(_root.Path, "runner-slices", "s-3");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "cgroup.kill"), "0");
        var group = tree.Create("s-3", new CgroupLimits(1, 1 << 28, 16));

        await group.KillAsync(CancellationToken.None);
        Assert.Equal("1", File.ReadAllText(Path.Combine(directory, "cgroup.kill")));

        await group.RemoveAsync(CancellationToken.None);
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public void Preparing_a_delegated_cgroup_moves_the_worker_into_a_leaf_and_enables_controllers_down_to_the_base()
    {
        var own = Directory.CreateDirectory(Path.Combine(_root.Path, "system.slice", "runner.service")).FullName;
        File.WriteAllText(Path.Combine(own, "cgroup.procs"), "4711\n4712\n");

        CgroupV2.Prepare(own, "runner-slices", ownIsRoot: false);

        // A plain file takes the last write; the kernel takes each pid written.
        Assert.Equal("4712", File.ReadAllText(Path.Combine(own, CgroupV2.WorkerLeaf, "cgroup.procs")));
        Assert.Equal("+cpu +memory +pids", File.ReadAllText(Path.Combine(own, "cgroup.subtree_control")));
        Assert.Equal("+cpu +memory +pids", File.ReadAllText(Path.Combine(own, "runner-slices", "cgroup.subtree_control")));
    }

    [Fact]
    public void The_root_cgroup_keeps_its_processes()
    {
        File.WriteAllText(Path.Combine(_root.Path, "cgroup.procs"), "1\n");

        CgroupV2.Prepare(_root.Path, "runner-slices", ownIsRoot: true);

        Assert.False(Directory.Exists(Path.Combine(_root.Path, CgroupV2.WorkerLeaf)));
        Assert.True(Directory.Exists(Path.Combine(_root.Path, "runner-slices")));
    }
}
