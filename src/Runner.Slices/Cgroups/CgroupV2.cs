namespace Runner.Slices.Cgroups;

/// <summary>
/// cgroup v2: one directory per slice under the base, with <c>cpu.max</c>, <c>memory.max</c>
/// (and <c>memory.swap.max</c> 0), <c>pids.max</c>; <c>cgroup.kill</c> ends the whole group at once;
/// <c>cpu.stat</c>, <c>memory.peak</c> and <c>memory.events</c> say what it used.
/// </summary>
internal sealed class CgroupV2 : CgroupTree
{
    /// <summary>Where the worker's own processes go when its cgroup must become an inner node.</summary>
    public const string WorkerLeaf = "runner-worker";

    private const string Controllers = "+cpu +memory +pids";

    private readonly string _baseDirectory;

    /// <param name="root">The directory the base is relative to: the mount, or the worker's own (delegated) cgroup.</param>
    public CgroupV2(string root, string @base, TimeProvider time) : base(@base, time)
    {
        _baseDirectory = Path.Combine(root, @base);
    }

    public override string Version => "v2";

    public override IReadOnlyList<string> BaseDirectories => [_baseDirectory];

    /// <summary>
    /// Makes the base usable: v2 allows no processes in a cgroup whose children get controllers
    /// (the root excepted), so when <paramref name="own"/> (the worker's cgroup) holds processes
    /// they move to a leaf <see cref="WorkerLeaf"/> first; then the controllers are enabled down to
    /// the base. This is what a systemd unit with <c>Delegate=yes</c> or a container with its own
    /// cgroup namespace allows.
    /// </summary>
    public static void Prepare(string own, string @base, bool ownIsRoot)
    {
        if (!ownIsRoot && CgroupFiles.ReadPids(Path.Combine(own, "cgroup.procs")).ToList() is { Count: > 0 } pids)
        {
            var leaf = Path.Combine(own, WorkerLeaf);
            Directory.CreateDirectory(leaf);
            foreach (var pid in pids)
            {
                try
                {
                    CgroupFiles.Write(leaf, "cgroup.procs", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
                catch (IOException)
                {
                    // A process that exited meanwhile.
                }
            }
        }
        CgroupFiles.Write(own, "cgroup.subtree_control", Controllers);
        var directory = own;
        foreach (var segment in @base.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            directory = Path.Combine(directory, segment);
            Directory.CreateDirectory(directory);
            CgroupFiles.Write(directory, "cgroup.subtree_control", Controllers);
        }
    }

    public override SliceCgroup CreateEmpty(string name)
    {
        CheckName(name);
        var directory = Path.Combine(_baseDirectory, name);
        Directory.CreateDirectory(directory);
        return new Group(directory, name, Time);
    }

    public override void SetLimits(SliceCgroup group, CgroupLimits limits, CgroupLimits? current)
    {
        var directory = group.Directories[0];
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        CgroupFiles.Write(directory, "cpu.max", $"{limits.QuotaMicros.ToString(invariant)} {CgroupLimits.PeriodMicros.ToString(invariant)}");
        CgroupFiles.Write(directory, "memory.max", limits.MemoryBytes.ToString(invariant));
        CgroupFiles.TryWrite(directory, "memory.swap.max", "0");
        CgroupFiles.Write(directory, "pids.max", limits.Pids.ToString(invariant));
    }

    protected override SliceCgroup Open(string name) => new Group(Path.Combine(_baseDirectory, name), name, Time);

    private sealed class Group(string directory, string name, TimeProvider time) : SliceCgroup(name, time)
    {
        public override IReadOnlyList<string> ProcsFiles => [Path.Combine(directory, "cgroup.procs")];

        public override IReadOnlyList<string> Directories => [directory];

        protected override void KillOnce() => CgroupFiles.TryWrite(directory, "cgroup.kill", "1");

        public override CgroupUsage ReadUsage()
        {
            var cpu = CgroupFiles.ReadKeys(directory, "cpu.stat", "usage_usec", "throttled_usec");
            var peak = CgroupFiles.ReadLong(directory, "memory.peak");
            var oomKills = CgroupFiles.ReadKey(directory, "memory.events", "oom_kill") ?? 0;
            var pidsRefused = CgroupFiles.ReadKey(directory, "pids.events", "max") ?? 0;
            return new CgroupUsage(cpu[0] / 1000, peak, oomKills > 0, pidsRefused > 0, (cpu[1] + 999) / 1000);
        }
    }
}
