namespace Runner.Slices.Cgroups;

/// <summary>
/// Where this worker's slice cgroups live — a base group per hierarchy (v1) or one base directory
/// (v2) — and how to make, find and sweep them. A slice's cgroup is <c>{base}/{name}</c>.
/// </summary>
internal abstract class CgroupTree(string @base, TimeProvider time)
{
    /// <summary>The base group, relative to each hierarchy's mount.</summary>
    public string Base { get; } = @base;

    protected TimeProvider Time { get; } = time;

    /// <summary><c>v1</c> or <c>v2</c>.</summary>
    public abstract string Version { get; }

    /// <summary>The base directories: one per v1 hierarchy in use, one on v2.</summary>
    public abstract IReadOnlyList<string> BaseDirectories { get; }

    /// <summary>Creates the cgroup and writes its limits; nothing has joined it yet.</summary>
    public SliceCgroup Create(string name, CgroupLimits limits)
    {
        var group = CreateEmpty(name);
        try
        {
            SetLimits(group, limits, null);
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

    /// <summary>Creates the cgroup without limits: made ahead of time, it gets them before anything joins it.</summary>
    public abstract SliceCgroup CreateEmpty(string name);

    /// <summary>
    /// Writes a cgroup's limits: before anything joins it, or, for a sandbox started ahead that
    /// waits in it, before its slice runs (<paramref name="current"/>: the limits written before,
    /// null for a new cgroup).
    /// </summary>
    public abstract void SetLimits(SliceCgroup group, CgroupLimits limits, CgroupLimits? current);

    /// <summary>
    /// Whether one thread of the worker can move into a slice's cgroup on its own (v1's
    /// <c>tasks</c> file): what it forks is then born inside, with no wrapper process to join.
    /// </summary>
    public virtual bool ThreadsCanJoin => false;

    /// <summary>Moves the calling thread into <paramref name="group"/>.</summary>
    public virtual void JoinThread(SliceCgroup group) => throw new NotSupportedException($"cgroup {Version} cannot move a single thread");

    /// <summary>Moves the calling thread back to where the worker's threads live.</summary>
    public virtual void LeaveThread() => throw new NotSupportedException($"cgroup {Version} cannot move a single thread");

    /// <summary>The cgroup of that name, if it exists, for a sweep.</summary>
    protected abstract SliceCgroup Open(string name);

    /// <summary>
    /// Kills and removes every slice cgroup under the base: what a worker that died left behind.
    /// Runs at start, before the worker takes commands. Returns how many of them still held
    /// processes (the empty spares a stopped worker made ahead of time are removed too, uncounted).
    /// </summary>
    public async Task<int> RemoveLeftoversAsync(CancellationToken cancellationToken)
    {
        var names = BaseDirectories.Where(Directory.Exists)
            .SelectMany(Directory.GetDirectories)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .ToList();
        var occupied = 0;
        foreach (var name in names)
        {
            var group = Open(name);
            occupied += group.Pids().Count > 0 ? 1 : 0;
            await group.RemoveAsync(cancellationToken);
        }
        return occupied;
    }

    /// <summary>A name is one path segment of letters, digits, <c>-</c>, <c>_</c> and <c>.</c>.</summary>
    protected static void CheckName(string name)
    {
        if (name.Length is 0 or > 200 || name is "." or ".." || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException($"'{name}' is not a valid cgroup name", nameof(name));
        }
    }
}
