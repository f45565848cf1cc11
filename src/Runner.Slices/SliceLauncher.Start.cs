using System.Diagnostics;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;

namespace Runner.Slices;

/// <summary>
/// Starting a slice's process. An isolated slice's sandbox is started ahead of time: bubblewrap,
/// already in its own cgroup as the slice uid, with everything that is the same for every slice of
/// its program and network mode on its command line, waits for the per-slice arguments (environment,
/// <c>/tmp</c>, the per-slice directory, the declared paths) on its stdin. A launch hands them over
/// in one write and closes stdin; the fork, the cgroup join and bubblewrap's own start are no longer
/// between a command and its result. One such spare is kept, for the program and network mode of
/// the last launch; another program or mode starts its sandbox on the spot, as does a slice whose
/// per-slice arguments exceed one atomic pipe write.
/// </summary>
internal sealed partial class SliceLauncher
{
    /// <summary>PIPE_BUF: a write this small to an empty pipe arrives whole, so a sandbox never reads half of a slice's arguments.</summary>
    private const int MaxStdinArguments = 4096;

    private readonly Lock _spareGate = new();
    private Spare? _spare;
    private bool _disposed;

    private long _spareHits;

    /// <summary>How many launches found their sandbox already waiting.</summary>
    public long SpareHits => Interlocked.Read(ref _spareHits);

    /// <summary>A started process and the cgroup it runs in, with the limits that cgroup has.</summary>
    private sealed record Prepared(Process Process, SliceCgroup? Cgroup, CgroupLimits Limits);

    private sealed record Spare(string Key, Task<Prepared> Ready);

    /// <summary>The process of <paramref name="request"/>, started (stdin closed), or why it could not be.</summary>
    private async Task<(Prepared? Prepared, string? SetupError)> StartAsync(SandboxRequest request, string directory)
    {
        if (!request.Isolated)
        {
            return await StartInlineAsync(request, null, directory);
        }
        var perSlice = SandboxCommand.PerSlice(request, directory);
        byte[] encoded;
        try
        {
            encoded = SandboxCommand.Encode(perSlice);
        }
        catch (ArgumentException ex)
        {
            return (null, "invalid slice request: " + ex.Message);
        }
        if (encoded.Length > MaxStdinArguments)
        {
            return await StartInlineAsync(request, perSlice, directory);
        }
        var key = SpareKey(request);
        for (var attempt = 0; ; attempt++)
        {
            Prepared prepared;
            try
            {
                prepared = (attempt == 0 ? await TakeSpareAsync(key) : null) ?? await StartProcessAsync(request, null, null);
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
                    _cgroups!.Tree.SetLimits(prepared.Cgroup, request.Limits);
                }
                await prepared.Process.StandardInput.BaseStream.WriteAsync(encoded);
                prepared.Process.StandardInput.Close();
                return (prepared, null);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A spare that died while it waited (a sweep by another worker on the same base) is replaced once.
                var died = prepared.Process.HasExited;
                Discard(prepared);
                if (!died || attempt > 0)
                {
                    return (null, "could not hand the sandbox its slice: " + ex.Message);
                }
            }
        }
    }

    /// <summary>Every argument on the command line, stdin closed at once.</summary>
    private async Task<(Prepared? Prepared, string? SetupError)> StartInlineAsync(SandboxRequest request, IReadOnlyList<string>? perSlice, string directory)
    {
        try
        {
            var prepared = await StartProcessAsync(request, perSlice ?? [], directory);
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
    private async Task<Prepared> StartProcessAsync(SandboxRequest request, IReadOnlyList<string>? perSlice, string? directory)
    {
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

    /// <summary>The waiting sandbox if it runs <paramref name="key"/>'s program and network mode; any other is discarded.</summary>
    private async Task<Prepared?> TakeSpareAsync(string key)
    {
        Spare? spare;
        lock (_spareGate)
        {
            spare = _spare;
            _spare = null;
        }
        if (spare is null)
        {
            return null;
        }
        Prepared prepared;
        try
        {
            prepared = await spare.Ready;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            SlicesLog.SpareFailed(_logger, ex, ex.Message);
            return null;
        }
        if (spare.Key == key && !prepared.Process.HasExited)
        {
            Interlocked.Increment(ref _spareHits);
            return prepared;
        }
        Discard(prepared);
        return null;
    }

    /// <summary>Starts the next sandbox for <paramref name="request"/>'s program and network mode, unless one waits already.</summary>
    private void MakeSpare(string key, SandboxRequest request)
    {
        lock (_spareGate)
        {
            if (_disposed || _spare is not null)
            {
                return;
            }
            _spare = new Spare(key, StartProcessAsync(request, null, null));
        }
    }

    /// <summary>Kills a started process that will not run a slice: with its cgroup, removed in the background, or on its own.</summary>
    private void Discard(Prepared prepared)
    {
        if (prepared.Cgroup is not null)
        {
            _cgroups!.Return(prepared.Cgroup);
        }
        else if (!prepared.Process.HasExited)
        {
            prepared.Process.Kill(entireProcessTree: true);
        }
        prepared.Process.Dispose();
    }

    /// <summary>Stops making spares and discards the one waiting.</summary>
    private async Task DiscardSpareAsync()
    {
        Spare? spare;
        lock (_spareGate)
        {
            _disposed = true;
            spare = _spare;
            _spare = null;
        }
        if (spare is null)
        {
            return;
        }
        try
        {
            Discard(await spare.Ready);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            SlicesLog.SpareFailed(_logger, ex, ex.Message);
        }
    }

    private static string SpareKey(SandboxRequest request) => request.Network + "\0" + string.Join('\0', request.Argv);
}
