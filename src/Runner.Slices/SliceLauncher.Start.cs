using System.Diagnostics;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;

namespace Runner.Slices;

/// <summary>
/// Starting a slice's process. An isolated slice's sandbox is started ahead of time: bubblewrap,
/// already in its own cgroup as the slice uid, with everything that is the same for every slice of
/// its program and network mode on its command line, waits for the per-slice arguments (environment,
/// <c>/tmp</c>, the per-slice directory, the declared paths) on its stdin. A launch writes the
/// slice's limits to that cgroup, hands the arguments over in one write and closes stdin; the fork,
/// the cgroup join and bubblewrap's own start are no longer between a command and its result.
/// Sandboxes wait for the program and network mode of the last two kinds of launch; another
/// starts its sandbox on the spot, as does a slice whose per-slice arguments exceed one atomic pipe
/// write.
/// </summary>
internal sealed partial class SliceLauncher
{
    /// <summary>PIPE_BUF: a write this small to an empty pipe arrives whole, so a sandbox never reads half of a slice's arguments.</summary>
    private const int MaxStdinArguments = 4096;

    /// <summary>Sandboxes kept waiting: one per program and network mode, for the last ones launched (none and host of one program fit).</summary>
    private const int MaxSpares = 2;

    private readonly Lock _spareGate = new();
    private readonly List<(string Key, Task<Prepared> Ready)> _spares = [];
    private bool _disposed;
    private long _spareHits;

    /// <summary>How many launches found their sandbox already waiting.</summary>
    public long SpareHits => Interlocked.Read(ref _spareHits);

    /// <summary>A started process and the cgroup it runs in, with the limits that cgroup has.</summary>
    private sealed record Prepared(Process Process, SliceCgroup? Cgroup, CgroupLimits Limits);

    /// <summary>The process of <paramref name="request"/>, started (stdin closed), or why it could not be.</summary>
    private async Task<(Prepared? Prepared, string? SetupError)> StartSliceAsync(SandboxRequest request, string directory, CancellationToken cancellationToken)
    {
        if (!request.Isolated)
        {
            return await StartInlineAsync(request, null, directory, cancellationToken);
        }
        List<string> perSlice;
        byte[] encoded;
        try
        {
            perSlice = SandboxCommand.PerSlice(request, directory);
            encoded = SandboxCommand.Encode(perSlice);
        }
        catch (ArgumentException ex)
        {
            return (null, "invalid slice request: " + ex.Message);
        }
        if (encoded.Length > MaxStdinArguments)
        {
            return await StartInlineAsync(request, perSlice, directory, cancellationToken);
        }
        var key = request.Network + "\0" + string.Join('\0', request.Argv);
        var spare = await TakeSpareAsync(key, cancellationToken);
        while (true)
        {
            Prepared prepared;
            try
            {
                prepared = spare ?? await StartProcessAsync(request, null, null, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return (null, "could not join the slice's cgroup: " + ex.Message);
            }
            MakeSpare(key, request);
            try
            {
                if (prepared.Cgroup is not null && prepared.Limits != request.Limits)
                {
                    _cgroups!.Tree.SetLimits(prepared.Cgroup, request.Limits, prepared.Limits);
                }
                await prepared.Process.StandardInput.BaseStream.WriteAsync(encoded, cancellationToken);
                prepared.Process.StandardInput.Close();
            }
            catch (OperationCanceledException)
            {
                Discard(prepared);
                throw;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Discard(prepared);
                // A sandbox that died while it waited (a sweep by another worker on the same base)
                // is replaced by one started on the spot.
                if (spare is null)
                {
                    return (null, "could not hand the sandbox its slice: " + ex.Message);
                }
                spare = null;
                continue;
            }
            return (prepared, null);
        }
    }

    /// <summary>Every argument on the command line, stdin closed at once.</summary>
    private async Task<(Prepared? Prepared, string? SetupError)> StartInlineAsync(SandboxRequest request, IReadOnlyList<string>? perSlice, string directory, CancellationToken cancellationToken)
    {
        try
        {
            var prepared = await StartProcessAsync(request, perSlice ?? [], directory, cancellationToken);
            prepared.Process.StandardInput.Close();
            return (prepared, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, "could not join the slice's cgroup: " + ex.Message);
        }
    }

    /// <summary>
    /// Starts the process in a cgroup from the pool with <paramref name="request"/>'s limits; with
    /// <paramref name="perSlice"/> null an isolated sandbox waits for its per-slice arguments on stdin.
    /// </summary>
    private async Task<Prepared> StartProcessAsync(SandboxRequest request, IReadOnlyList<string>? perSlice, string? directory, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var cgroup = _cgroups?.Take(request.Limits);
        try
        {
            // On v1 the launcher thread forks from inside the slice's cgroup; otherwise a shell joins it first.
            var tree = _cgroups?.Tree;
            var threadJoins = cgroup is not null && tree!.ThreadsCanJoin;
            var asUser = request.Isolated && _user is not null;
            var argv = SandboxCommand.Build(_options, _system, request, perSlice, directory, threadJoins ? [] : cgroup?.ProcsFiles ?? [], setpriv: !asUser);
            var start = new ProcessStartInfo(argv[0])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = request.Isolated ? "/" : Path.Combine(directory!, "slice"),
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
            return new Prepared(process, cgroup, request.Limits);
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
            var index = _spares.FindIndex(s => s.Key == key);
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
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            SlicesLog.SpareFailed(_logger, ex, ex.Message);
            return null;
        }
        if (prepared.Process.HasExited)
        {
            Discard(prepared);
            return null;
        }
        Interlocked.Increment(ref _spareHits);
        return prepared;
    }

    /// <summary>
    /// Starts, off the launch path, the next sandbox for <paramref name="request"/>'s program and
    /// network mode unless one waits already; the sandbox of the least recent other kind makes room.
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
            _spares.Add((key, Task.Run(() => StartProcessAsync(request, null, null, CancellationToken.None))));
        }
        if (evicted is not null)
        {
            _ = DiscardWhenStartedAsync(evicted);
        }
    }

    /// <summary>Kills a started process that will not run a slice, then removes its cgroup in the background.</summary>
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
    }

    private async Task DiscardWhenStartedAsync(Task<Prepared> ready)
    {
        try
        {
            Discard(await ready);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
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
