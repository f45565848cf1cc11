using System.Diagnostics;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;

namespace Runner.Slices;

/// <summary>
/// Starting a slice's process. An isolated slice's sandbox is built ahead of time: bubblewrap,
/// already in its own cgroup as the slice uid, sets up the namespaces and every mount of a slice —
/// its program, network mode, environment and declared paths as the last launch of that kind had
/// them, and an empty per-slice directory at <c>/run</c> — and blocks right before it execs the
/// program, on a FIFO of its own. A launch of the same kind writes its spec and secrets into that
/// directory and its limits to that cgroup, then writes one byte to the FIFO: only the program's
/// own start is left between a command and its result. Sandboxes wait for the last two kinds
/// launched; another kind starts its sandbox on the spot.
/// </summary>
internal sealed partial class SliceLauncher
{

    /// <summary>Sandboxes kept waiting: one per kind (program, network mode, environment, declared paths), for the last kinds launched.</summary>
    private const int MaxSpares = 2;

    private readonly Lock _spareGate = new();
    private readonly List<(string Key, Task<Prepared> Ready)> _spares = [];
    private bool _disposed;
    private long _spareHits;

    /// <summary>How many launches found their sandbox already waiting.</summary>
    public long SpareHits => Interlocked.Read(ref _spareHits);

    /// <summary>Completes when the sandboxes being started ahead now are started (or failed to).</summary>
    public async Task WhenSparesStartedAsync()
    {
        Task[] pending;
        lock (_spareGate)
        {
            pending = [.. _spares.Select(s => (Task)s.Ready)];
        }
        try
        {
            await Task.WhenAll(pending);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or System.ComponentModel.Win32Exception)
        {
            SlicesLog.SpareFailed(_logger, ex, ex.Message);
        }
    }

    /// <summary>
    /// A started process, the cgroup it runs in with the limits that cgroup has, its per-slice
    /// directory, and, for a sandbox started ahead, the FIFO that releases it into its program.
    /// </summary>
    private sealed record Prepared(Process Process, SliceCgroup? Cgroup, CgroupLimits Limits, string Directory, TriggerFifo? Trigger)
    {
        /// <summary>What each declared path was when the sandbox bound it (a sandbox built ahead).</summary>
        public IReadOnlyList<(ulong Device, ulong Inode)?>? Bound { get; init; }
    }

    /// <summary>The process of <paramref name="request"/>, started (stdin closed), or why it could not be.</summary>
    private async Task<(Prepared? Prepared, string? SetupError)> StartSliceAsync(SandboxRequest request, string? key, CancellationToken cancellationToken)
    {
        var spare = key is null ? null : await TakeSpareAsync(key, cancellationToken);
        if (spare is not null && (spare.Bound is not { } bound || Identities(request) is not { } now || !bound.SequenceEqual(now)))
        {
            // A declared path was replaced since the sandbox bound it (a directory removed and made
            // again): the sandbox shows the old one, so it is not this slice's.
            Discard(spare);
            spare = null;
        }
        if (spare is not null)
        {
            try
            {
                SliceDirectories.Fill(spare.Directory, request, _options.Uid, _options.Gid);
                if (spare.Cgroup is not null && spare.Limits != request.Limits)
                {
                    _cgroups!.Tree.SetLimits(spare.Cgroup, request.Limits, spare.Limits);
                }
                // The launcher holds the FIFO too, so the write itself cannot tell a dead sandbox. One
                // that dies after this look, or whose inner process died first, ends with the byte unread
                // and is replaced when the run finds it so; only its outer process dying alone in between,
                // the inner one alive to take the byte, still ends the slice as killed.
                if (HasEnded(spare.Process))
                {
                    throw new IOException("the sandbox built ahead has exited");
                }
                spare.Trigger!.Fire();
                spare.Process.StandardInput.Close();
                Interlocked.Increment(ref _spareHits);
                return (spare, null);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // A sandbox that died while it waited (a sweep by another worker on the same base)
                // is replaced by one started on the spot.
                Discard(spare);
                if (ex is ArgumentException)
                {
                    return (null, "invalid slice request: " + ex.Message);
                }
            }
            catch
            {
                Discard(spare);
                throw;
            }
        }
        string directory;
        try
        {
            directory = SliceDirectories.Create(_options.RunDirectory, request, _options.Uid, _options.Gid);
        }
        catch (ArgumentException ex)
        {
            return (null, "invalid slice request: " + ex.Message);
        }
        try
        {
            var prepared = await StartProcessAsync(request, directory, null, cancellationToken);
            prepared.Process.StandardInput.Close();
            return (prepared, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            SliceDirectories.Remove(directory);
            return (null, ex is ArgumentException ? "invalid slice request: " + ex.Message : "could not join the slice's cgroup: " + ex.Message);
        }
        catch
        {
            SliceDirectories.Remove(directory);
            throw;
        }
    }

    /// <summary>
    /// What a sandbox built ahead must match: everything on its command line; null for a slice
    /// that gets none (not isolated, or holding a NUL, which would make two fields of the key one
    /// and is refused on the command line anyway).
    /// </summary>
    internal static string? Key(SandboxRequest request) =>
        !request.Isolated || request.Argv.Concat(request.Environment.Keys).Concat(request.Environment.Values).Any(a => a.Contains('\0', StringComparison.Ordinal))
            ? null
            : string.Join('\0',
        [request.Network.ToString(), .. request.Argv, "env", .. request.Environment.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Key + "=" + e.Value),
         "ro", .. request.ReadOnlyPaths, "rw", .. request.ReadWritePaths]);

    /// <summary>What each declared path is now; null when this C library cannot tell (no <c>stat</c> symbol before glibc 2.33).</summary>
    private static List<(ulong Device, ulong Inode)?>? Identities(SandboxRequest request)
    {
        try
        {
            return [.. request.ReadOnlyPaths.Concat(request.ReadWritePaths).Select(Native.Identity)];
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>A sandbox built ahead for <paramref name="request"/>'s kind: its own directory and trigger FIFO.</summary>
    private async Task<Prepared> StartSpareAsync(SandboxRequest request)
    {
        var id = "w-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var directory = SliceDirectories.CreateEmpty(_options.RunDirectory, id, _options.Uid, _options.Gid);
        TriggerFifo? trigger = null;
        try
        {
            trigger = TriggerFifo.Create(directory + ".go", _options.Uid, _options.Gid);
            var bound = Identities(request);
            return await StartProcessAsync(request, directory, trigger, CancellationToken.None) with { Bound = bound };
        }
        catch
        {
            trigger?.Dispose();
            SliceDirectories.Remove(directory);
            throw;
        }
    }

    /// <summary>
    /// Starts the process in a cgroup from the pool with <paramref name="request"/>'s limits; with
    /// <paramref name="trigger"/> the sandbox waits on that FIFO before its program runs.
    /// </summary>
    private async Task<Prepared> StartProcessAsync(SandboxRequest request, string directory, TriggerFifo? trigger, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var cgroup = _cgroups?.Take(request.Limits);
        try
        {
            // On v1 the launcher thread forks from inside the slice's cgroup; otherwise a shell joins it first.
            var tree = _cgroups?.Tree;
            var threadJoins = cgroup is not null && tree!.ThreadsCanJoin;
            var asUser = request.Isolated && _user is not null;
            var argv = SandboxCommand.Build(_options, _system, request, directory, threadJoins ? [] : cgroup?.ProcsFiles ?? [], !asUser, trigger?.Path);
            var start = new ProcessStartInfo(argv[0])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = request.Isolated ? "/" : Path.Combine(directory, "slice"),
            };
            foreach (var arg in argv.Skip(1))
            {
                start.ArgumentList.Add(arg);
            }
            start.Environment.Clear();
            start.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
            if (!request.Isolated)
            {
                foreach (var (name, value) in request.Environment)
                {
                    start.Environment[name] = value;
                }
            }
            if (asUser)
            {
                start.UserName = _user;
            }
            var process = threadJoins
                ? await LauncherThread.StartAsync(start, () => tree!.JoinThread(cgroup!), tree!.LeaveThread)
                : await LauncherThread.StartAsync(start);
            return new Prepared(process, cgroup, request.Limits, directory, trigger);
        }
        catch
        {
            if (cgroup is not null)
            {
                _cgroups!.Return(cgroup);
            }
            throw;
        }
    }

    /// <summary>The sandbox waiting for <paramref name="key"/>'s program and network mode, once it is started; null when none is.</summary>
    private async Task<Prepared?> TakeSpareAsync(string key, CancellationToken cancellationToken)
    {
        Task<Prepared>? ready = null;
        lock (_spareGate)
        {
            // One still being started is left for a later slice: waiting for its start would cost
            // this one more than starting its own.
            var index = _spares.FindIndex(s => s.Key == key && s.Ready.IsCompleted);
            if (index >= 0)
            {
                ready = _spares[index].Ready;
                _spares.RemoveAt(index);
            }
        }
        if (ready is null)
        {
            return null;
        }
        Prepared prepared;
        try
        {
            prepared = await ready.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            _ = DiscardWhenStartedAsync(ready);
            throw;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or System.ComponentModel.Win32Exception)
        {
            SlicesLog.SpareFailed(_logger, ex, ex.Message);
            return null;
        }
        return prepared;
    }

    /// <summary>
    /// Whether a sandbox's process has ended. <see cref="Process.HasExited"/> turns true only once
    /// .NET's SIGCHLD handling has reaped the child, so a sandbox killed a moment ago, a zombie, still
    /// looks alive to it; and its bubblewrap child, which waits on the FIFO without a parent-death
    /// signal, outlives it and would run the slice unwatched. waitid sees the zombie and leaves it for
    /// .NET to reap. Asked first, it cannot have seen another process given the pid after the reap:
    /// HasExited is true by then.
    /// </summary>
    private static bool HasEnded(Process process) => Native.ChildEnded(process.Id) || process.HasExited;

    /// <summary>
    /// Starts the next sandbox for <paramref name="request"/>'s kind, unless one waits already; the
    /// sandbox of the least recent other kind makes room. Called once the slice has ended: a
    /// process start holds .NET's process-start lock, which the exit of a running slice waits for,
    /// and a sandbox build competes with the slice for the CPUs.
    /// </summary>
    private void MakeSpare(string key, SandboxRequest request)
    {
        Task<Prepared>? evicted = null;
        lock (_spareGate)
        {
            if (_disposed || _spares.Exists(s => s.Key == key))
            {
                return;
            }
            if (_spares.Count >= MaxSpares)
            {
                evicted = _spares[0].Ready;
                _spares.RemoveAt(0);
            }
            _spares.Add((key, Task.Run(() => StartSpareAsync(request))));
        }
        if (evicted is not null)
        {
            _ = DiscardWhenStartedAsync(evicted);
        }
    }

    /// <summary>Kills a started process that will not run a slice, removes its directory, and its cgroup in the background.</summary>
    private void Discard(Prepared prepared)
    {
        if (!prepared.Process.HasExited)
        {
            prepared.Process.Kill(entireProcessTree: true);
        }
        if (prepared.Cgroup is not null)
        {
            _cgroups!.Return(prepared.Cgroup);
        }
        prepared.Process.Dispose();
        Release(prepared);
    }

    /// <summary>Removes a sandbox's per-slice directory and trigger FIFO.</summary>
    private static void Release(Prepared prepared)
    {
        prepared.Trigger?.Dispose();
        SliceDirectories.Remove(prepared.Directory);
    }

    private async Task DiscardWhenStartedAsync(Task<Prepared> ready)
    {
        try
        {
            Discard(await ready);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or System.ComponentModel.Win32Exception)
        {
            SlicesLog.SpareFailed(_logger, ex, ex.Message);
        }
    }

    /// <summary>Stops starting sandboxes ahead and discards those waiting.</summary>
    private async Task DiscardSparesAsync()
    {
        List<Task<Prepared>> waiting;
        lock (_spareGate)
        {
            _disposed = true;
            waiting = _spares.Select(s => s.Ready).ToList();
            _spares.Clear();
        }
        foreach (var ready in waiting)
        {
            await DiscardWhenStartedAsync(ready);
        }
    }
}
