namespace Runner.Slices.Cgroups;

/// <summary>
/// One slice's cgroup (in each v1 hierarchy, or one v2 directory). The launcher's wrapper writes
/// its own pid into <see cref="ProcsFiles"/> before it execs the sandbox, so nothing of the slice
/// ever runs outside it.
/// </summary>
internal abstract class SliceCgroup(string name, TimeProvider time)
{
    private const int MaxKillRounds = 500;

    public string Name { get; } = name;

    /// <summary>The <c>cgroup.procs</c> files a process writes its pid into to join.</summary>
    public abstract IReadOnlyList<string> ProcsFiles { get; }

    /// <summary>The directories that make up the cgroup (one per v1 hierarchy, one on v2).</summary>
    public abstract IReadOnlyList<string> Directories { get; }

    public abstract CgroupUsage ReadUsage();

    /// <summary>Every pid in the cgroup, in any of its directories.</summary>
    public IReadOnlySet<int> Pids()
    {
        var pids = new HashSet<int>();
        foreach (var file in ProcsFiles)
        {
            foreach (var pid in CgroupFiles.ReadPids(file))
            {
                pids.Add(pid);
            }
        }
        return pids;
    }

    /// <summary>
    /// Kills every process in the cgroup and waits until it is empty: <c>cgroup.kill</c> on v2, a
    /// bounded SIGKILL sweep otherwise (the pids limit bounds a fork bomb that races the sweep).
    /// </summary>
    public async Task KillAsync(CancellationToken cancellationToken)
    {
        KillOnce();
        for (var round = 0; round < MaxKillRounds; round++)
        {
            var pids = Pids();
            if (pids.Count == 0)
            {
                return;
            }
            foreach (var pid in pids)
            {
                // Only a launcher thread stuck in the group (v1) could put the worker here: never kill the worker.
                if (pid != Environment.ProcessId)
                {
                    Native.Kill(pid, Native.SigKill);
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(round < 20 ? 1 : 10), time, cancellationToken);
        }
        throw new IOException($"cgroup {Name} still holds processes after {MaxKillRounds} kill rounds");
    }

    /// <summary>A one-shot kill of the whole group when the kernel offers one.</summary>
    protected virtual void KillOnce()
    {
    }

    /// <summary>Kills what is left and removes the directories (a cgroup with processes cannot be removed).</summary>
    public async Task RemoveAsync(CancellationToken cancellationToken)
    {
        await KillAsync(cancellationToken);
        foreach (var directory in Directories.Reverse())
        {
            await CgroupFiles.RemoveTreeAsync(directory, time, cancellationToken);
        }
    }
}
