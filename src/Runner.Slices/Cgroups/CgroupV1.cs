namespace Runner.Slices.Cgroups;

/// <summary>
/// cgroup v1: the <c>cpu</c>, <c>cpuacct</c>, <c>memory</c> and <c>pids</c> controllers, each on
/// its own hierarchy or some combined (<c>cpu,cpuacct</c>). A slice gets a group of the same name
/// in each distinct hierarchy and joins them all.
/// </summary>
internal sealed class CgroupV1 : CgroupTree
{
    public const string Cpu = "cpu";
    public const string CpuAcct = "cpuacct";
    public const string Memory = "memory";
    public const string Pids = "pids";

    private readonly IReadOnlyDictionary<string, string> _mounts;
    private readonly Lazy<List<string>> _homes;

    /// <param name="mounts">Controller → the mount of its hierarchy (<c>cpu</c>, <c>memory</c>, <c>pids</c> required; <c>cpuacct</c> optional).</param>
    public CgroupV1(IReadOnlyDictionary<string, string> mounts, string @base, TimeProvider time) : base(@base, time)
    {
        foreach (var required in new[] { Cpu, Memory, Pids })
        {
            if (!mounts.ContainsKey(required))
            {
                throw new ArgumentException($"cgroup v1 needs the {required} controller", nameof(mounts));
            }
        }
        _mounts = mounts;
        _homes = new Lazy<List<string>>(Homes);
    }

    public override string Version => "v1";

    /// <summary>The controllers found, of cpu, cpuacct, memory and pids.</summary>
    public IEnumerable<string> Controllers => _mounts.Keys.Order(StringComparer.Ordinal);

    public override IReadOnlyList<string> BaseDirectories =>
        _mounts.Values.Distinct(StringComparer.Ordinal).Select(m => Path.Combine(m, Base)).ToList();

    private string DirectoryOf(string controller, string name) => Path.Combine(_mounts[controller], Base, name);

    public override SliceCgroup CreateEmpty(string name)
    {
        CheckName(name);
        var group = Open(name);
        foreach (var directory in group.Directories)
        {
            Directory.CreateDirectory(directory);
        }
        return group;
    }

    public override void SetLimits(SliceCgroup group, CgroupLimits limits, CgroupLimits? current)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        var cpu = DirectoryOf(Cpu, group.Name);
        CgroupFiles.Write(cpu, "cpu.cfs_period_us", CgroupLimits.PeriodMicros.ToString(invariant));
        CgroupFiles.Write(cpu, "cpu.cfs_quota_us", limits.QuotaMicros.ToString(invariant));
        var memory = DirectoryOf(Memory, group.Name);
        var bytes = limits.MemoryBytes.ToString(invariant);
        // memory+swap at the same limit: a slice cannot spill past its memory into swap. The kernel
        // keeps memsw at or above memory: a raise writes memsw first, a cut (a new cgroup's memory
        // is unlimited) memory first.
        if (current is { } before && limits.MemoryBytes > before.MemoryBytes)
        {
            CgroupFiles.TryWrite(memory, "memory.memsw.limit_in_bytes", bytes);
            CgroupFiles.Write(memory, "memory.limit_in_bytes", bytes);
        }
        else
        {
            CgroupFiles.Write(memory, "memory.limit_in_bytes", bytes);
            CgroupFiles.TryWrite(memory, "memory.memsw.limit_in_bytes", bytes);
        }
        CgroupFiles.Write(DirectoryOf(Pids, group.Name), "pids.max", limits.Pids.ToString(invariant));
    }

    /// <summary>
    /// v1 keeps cgroup membership per thread: the launcher thread writes its own tid into each
    /// hierarchy's <c>tasks</c>, forks — the child is born in the slice's cgroup — and moves back.
    /// </summary>
    public override bool ThreadsCanJoin => true;

    public override void JoinThread(SliceCgroup group)
    {
        var tid = Native.GetTid().ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var directory in group.Directories)
        {
            CgroupFiles.Write(directory, "tasks", tid);
        }
    }

    public override void LeaveThread()
    {
        var tid = Native.GetTid().ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var directory in _homes.Value)
        {
            CgroupFiles.Write(directory, "tasks", tid);
        }
    }

    /// <summary>The worker's own cgroup in each hierarchy in use, from <c>/proc/self/cgroup</c> (<c>id:controllers:path</c>).</summary>
    private List<string> Homes()
    {
        var homes = new List<string>();
        var lines = File.ReadAllLines("/proc/self/cgroup");
        foreach (var mount in _mounts.Values.Distinct(StringComparer.Ordinal))
        {
            var controller = _mounts.First(m => m.Value == mount).Key;
            var line = lines.Select(l => l.Split(':', 3)).FirstOrDefault(f => f.Length == 3 && f[1].Split(',').Contains(controller))
                ?? throw new IOException($"the worker's own {controller} cgroup is not in /proc/self/cgroup");
            homes.Add(Path.Combine(mount, line[2].TrimStart('/')));
        }
        return homes;
    }

    protected override SliceCgroup Open(string name) => new Group(this, name);

    private sealed class Group(CgroupV1 tree, string name) : SliceCgroup(name, tree.Time)
    {
        private readonly List<string> _directories = tree._mounts.Values.Distinct(StringComparer.Ordinal).Select(m => Path.Combine(m, tree.Base, name)).ToList();

        public override IReadOnlyList<string> ProcsFiles => _directories.Select(d => Path.Combine(d, "cgroup.procs")).ToList();

        public override IReadOnlyList<string> Directories => _directories;

        public override CgroupUsage ReadUsage()
        {
            long? cpuMs = null;
            if (tree._mounts.ContainsKey(CpuAcct) && CgroupFiles.ReadLong(tree.DirectoryOf(CpuAcct, Name), "cpuacct.usage") is { } nanos)
            {
                cpuMs = nanos / 1_000_000;
            }
            var memory = tree.DirectoryOf(Memory, Name);
            var peak = CgroupFiles.ReadLong(memory, "memory.max_usage_in_bytes");
            var oomKills = CgroupFiles.ReadKey(memory, "memory.oom_control", "oom_kill") ?? 0;
            var pidsRefused = CgroupFiles.ReadKey(tree.DirectoryOf(CgroupV1.Pids, Name), "pids.events", "max") ?? 0;
            var throttledNanos = CgroupFiles.ReadKey(tree.DirectoryOf(Cpu, Name), "cpu.stat", "throttled_time");
            return new CgroupUsage(cpuMs, peak, oomKills > 0, pidsRefused > 0, (throttledNanos + 999_999) / 1_000_000);
        }
    }
}
