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
    }

    public override string Version => "v1";

    /// <summary>The controllers found, of cpu, cpuacct, memory and pids.</summary>
    public IEnumerable<string> Controllers => _mounts.Keys.Order(StringComparer.Ordinal);

    public override IReadOnlyList<string> BaseDirectories =>
        _mounts.Values.Distinct(StringComparer.Ordinal).Select(m => Path.Combine(m, Base)).ToList();

    private string DirectoryOf(string controller, string name) => Path.Combine(_mounts[controller], Base, name);

    public override SliceCgroup Create(string name, CgroupLimits limits)
    {
        CheckName(name);
        var group = (Group)Open(name);
        foreach (var directory in group.Directories)
        {
            Directory.CreateDirectory(directory);
        }
        try
        {
            var cpu = DirectoryOf(Cpu, name);
            CgroupFiles.Write(cpu, "cpu.cfs_period_us", CgroupLimits.PeriodMicros.ToString(System.Globalization.CultureInfo.InvariantCulture));
            CgroupFiles.Write(cpu, "cpu.cfs_quota_us", limits.QuotaMicros.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var memory = DirectoryOf(Memory, name);
            var bytes = limits.MemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
            CgroupFiles.Write(memory, "memory.limit_in_bytes", bytes);
            // memory+swap at the same limit: a slice cannot spill past its memory into swap.
            CgroupFiles.TryWrite(memory, "memory.memsw.limit_in_bytes", bytes);
            CgroupFiles.Write(DirectoryOf(Pids, name), "pids.max", limits.Pids.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch
        {
            foreach (var directory in group.Directories)
            {
                CgroupFiles.RemoveTree(directory);
            }
            throw;
        }
        return group;
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
            return new CgroupUsage(cpuMs, peak, oomKills > 0, pidsRefused > 0);
        }
    }
}
