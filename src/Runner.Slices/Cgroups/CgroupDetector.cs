namespace Runner.Slices.Cgroups;

/// <summary>
/// Finds the cgroup tree slices can use: v2 when the worker's cgroup offers the <c>cpu</c>,
/// <c>memory</c> and <c>pids</c> controllers, else v1 with those controllers mounted; then checks
/// that the worker can create groups there.
/// </summary>
internal static class CgroupDetector
{
    private static readonly string[] s_v2Needed = ["cpu", "memory", "pids"];

    public static CgroupTree? Detect(string @base, TimeProvider time, List<string> problems, string mountInfo = "/proc/self/mountinfo", string ownCgroup = "/proc/self/cgroup")
    {
        List<(string MountPoint, string FsType, string[] Options)> mounts;
        string own;
        try
        {
            mounts = File.ReadLines(mountInfo).Select(ParseMount).OfType<(string, string, string[])>().ToList();
            own = File.ReadLines(ownCgroup).FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..] ?? "/";
        }
        catch (IOException ex)
        {
            problems.Add($"cannot read the mount table: {ex.Message}");
            return null;
        }

        foreach (var (mountPoint, _, _) in mounts.Where(m => m.FsType == "cgroup2"))
        {
            var ownDirectory = Path.Combine(mountPoint, own.TrimStart('/'));
            var controllers = ReadWords(Path.Combine(ownDirectory, "cgroup.controllers"));
            if (s_v2Needed.All(controllers.Contains))
            {
                try
                {
                    CgroupV2.Prepare(ownDirectory, @base, ownIsRoot: !File.Exists(Path.Combine(ownDirectory, "cgroup.type")));
                    var tree = new CgroupV2(ownDirectory, @base, time);
                    return Writable(tree, problems) ? tree : null;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    problems.Add($"cgroup v2 at {ownDirectory} is not writable: {ex.Message}");
                    return null;
                }
            }
        }

        var v1 = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (mountPoint, _, options) in mounts.Where(m => m.FsType == "cgroup"))
        {
            foreach (var controller in new[] { CgroupV1.Cpu, CgroupV1.CpuAcct, CgroupV1.Memory, CgroupV1.Pids })
            {
                if (options.Contains(controller))
                {
                    v1.TryAdd(controller, mountPoint);
                }
            }
        }
        var missing = new[] { CgroupV1.Cpu, CgroupV1.Memory, CgroupV1.Pids }.Where(c => !v1.ContainsKey(c)).ToList();
        if (missing.Count > 0)
        {
            problems.Add(v1.Count == 0
                ? "no cgroup v2 with the cpu, memory and pids controllers, and no cgroup v1 controllers"
                : $"cgroup v1 lacks the {string.Join(", ", missing)} controller(s)");
            return null;
        }
        var v1Tree = new CgroupV1(v1, @base, time);
        return Writable(v1Tree, problems) ? v1Tree : null;
    }

    /// <summary>Creates the base and a throw-away group in it: a read-only cgroup mount fails here, not on the first slice.</summary>
    private static bool Writable(CgroupTree tree, List<string> problems)
    {
        try
        {
            foreach (var directory in tree.BaseDirectories)
            {
                Directory.CreateDirectory(directory);
            }
            var probe = tree.Create("probe-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), new CgroupLimits(1, 64L * 1024 * 1024, 16));
            foreach (var directory in probe.Directories)
            {
                CgroupFiles.RemoveTree(directory);
            }
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add($"cgroup {tree.Version} at {string.Join(", ", tree.BaseDirectories)} is not writable: {ex.Message}");
            return false;
        }
    }

    /// <summary>A mountinfo line: <c>id parent major:minor root mountpoint options … - fstype source superoptions</c>.</summary>
    private static (string, string, string[])? ParseMount(string line)
    {
        var separator = line.IndexOf(" - ", StringComparison.Ordinal);
        if (separator < 0)
        {
            return null;
        }
        var left = line[..separator].Split(' ');
        var right = line[(separator + 3)..].Split(' ');
        if (left.Length < 5 || right.Length < 3)
        {
            return null;
        }
        return (left[4].Replace("\\040", " ", StringComparison.Ordinal), right[0], right[2].Split(','));
    }

    private static HashSet<string> ReadWords(string file)
    {
        try
        {
            return File.ReadAllText(file).Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
