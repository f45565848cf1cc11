using Runner.Slices.Cgroups;
using Runner.Testing;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>
/// The v1 usage files, read from directories laid out as the kernel lays them out (cpu and cpuacct
/// on one combined hierarchy): the real v1 tree is exercised by <see cref="LimitTests"/>.
/// </summary>
public sealed class CgroupV1Tests : IDisposable
{
    private readonly TempDirectory _root = new("runner-fake-cgroup-v1");

    public void Dispose() => _root.Dispose();

    [Fact]
    public void Usage_comes_from_cpuacct_usage_memory_files_pids_events_and_the_cpu_controllers_stat()
    {
        var combined = Path.Combine(_root.Path, "cpu,cpuacct");
        var tree = Tree(combined, cpuAcct: true);
        var group = tree.Create("s-1", new CgroupLimits(0.5, 1 << 28, 32));
        var cpu = Path.Combine(combined, "runner-slices", "s-1");
        var memory = Path.Combine(_root.Path, "memory", "runner-slices", "s-1");
        File.WriteAllText(Path.Combine(cpu, "cpuacct.usage"), "2345678901\n");
        File.WriteAllText(Path.Combine(cpu, "cpu.stat"), "nr_periods 40\nnr_throttled 3\nthrottled_time 1500001\n");
        File.WriteAllText(Path.Combine(memory, "memory.max_usage_in_bytes"), "52428800\n");
        File.WriteAllText(Path.Combine(memory, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        File.WriteAllText(Path.Combine(_root.Path, "pids", "runner-slices", "s-1", "pids.events"), "max 2\n");

        var usage = group.ReadUsage();

        // Nanoseconds: CPU time truncated to 2,345 ms; throttled time rounded up, so 1.5 ms held back reads 2 ms.
        Assert.Equal(new CgroupUsage(2345, 52_428_800, OomKilled: false, PidsLimited: true, CpuThrottledMs: 2), usage);
    }

    [Fact]
    public void A_throttle_under_a_millisecond_still_reads_as_throttled_and_none_as_zero()
    {
        var tree = Tree(Path.Combine(_root.Path, "cpu"), cpuAcct: false);
        var briefly = tree.Create("s-2", new CgroupLimits(0.5, 1 << 28, 32));
        var never = tree.Create("s-3", new CgroupLimits(0.5, 1 << 28, 32));
        File.WriteAllText(Path.Combine(_root.Path, "cpu", "runner-slices", "s-2", "cpu.stat"), "nr_periods 40\nnr_throttled 1\nthrottled_time 1\n");
        File.WriteAllText(Path.Combine(_root.Path, "cpu", "runner-slices", "s-3", "cpu.stat"), "nr_periods 40\nnr_throttled 0\nthrottled_time 0\n");

        Assert.Equal(1, briefly.ReadUsage().CpuThrottledMs);
        Assert.Equal(0, never.ReadUsage().CpuThrottledMs);
        // No cpuacct hierarchy: the CPU time is not known, not zero.
        Assert.Null(never.ReadUsage().CpuMs);
    }

    /// <summary>A tree over fake mounts: <paramref name="cpu"/> for the cpu controller (and cpuacct with it, when asked), memory and pids apart.</summary>
    private CgroupV1 Tree(string cpu, bool cpuAcct)
    {
        var mounts = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [CgroupV1.Cpu] = cpu,
            [CgroupV1.Memory] = Path.Combine(_root.Path, "memory"),
            [CgroupV1.Pids] = Path.Combine(_root.Path, "pids"),
        };
        if (cpuAcct)
        {
            mounts[CgroupV1.CpuAcct] = cpu;
        }
        return new CgroupV1(mounts, "runner-slices", TimeProvider.System);
    }
}
