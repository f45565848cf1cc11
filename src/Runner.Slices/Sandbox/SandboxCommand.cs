using System.Globalization;

namespace Runner.Slices.Sandbox;

/// <summary>
/// The command line that runs a slice: <c>bwrap</c>, which builds the namespaces and the
/// filesystem view and runs the program, started as the unprivileged slice uid. Where the launcher
/// thread cannot fork straight into the slice's cgroup (cgroup v2), a shell first writes its own pid
/// into every <c>cgroup.procs</c> and then execs — so the slice is confined before any of its code
/// runs — and, where the process cannot be started as the slice user, <c>setpriv</c> drops to it.
/// </summary>
internal static class SandboxCommand
{
    /// <summary>The wrapper's exit code when it could not join the cgroup (the program never ran).</summary>
    public const int JoinFailedExit = 125;

    /// <summary>Arguments up to <c>--</c> are <c>cgroup.procs</c> files; the rest is the command to exec.</summary>
    public const string JoinScript = "while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 125; shift; done; shift; exec \"$@\"";

    private const string Path = "/usr/local/bin:/usr/bin:/bin";

    /// <summary>
    /// Opens the trigger FIFO, read-only, as fd 3 and execs the sandbox (the launcher holds the FIFO
    /// open, so the open does not wait). Inside, once everything is set up, <see cref="ReleaseScript"/>
    /// waits on it.
    /// </summary>
    public const string TriggerScript = "exec \"$@\" 3<\"$0\"";

    /// <summary>
    /// What a sandbox built ahead runs inside: it waits for the line the launcher writes to release
    /// it, closes the FIFO and execs the program. Once the launcher's side is closed — the worker
    /// ended, even by SIGKILL — the read meets end of file and the sandbox exits without running
    /// anything. bubblewrap's parent-death signal is already set when it waits here, so the sandbox
    /// also ends with bubblewrap's outer process.
    /// </summary>
    public const string ReleaseScript = "read -r go <&3 || exit 0; exec 3<&-; exec \"$@\"";

    /// <summary>
    /// The whole command line. With <paramref name="procsFiles"/>, a shell joins them before it
    /// execs the rest (none: the launcher thread already put the slice's cgroup around the fork).
    /// <paramref name="setpriv"/> drops to the slice uid with setpriv (otherwise the process is
    /// started as that user). With <paramref name="trigger"/> the sandbox is built at once and its
    /// program runs when a byte is written to that FIFO (a sandbox started ahead).
    /// </summary>
    public static List<string> Build(SliceLauncherOptions options, SystemView system, SandboxRequest request, string hostDirectory, IReadOnlyList<string> procsFiles, bool setpriv, string? trigger = null)
    {
        List<string> argv = procsFiles.Count > 0 ? [options.Shell, "-c", JoinScript, "runner-slice-join", .. procsFiles, "--"] : [];
        if (request.Isolated)
        {
            if (setpriv)
            {
                argv.AddRange(Setpriv(options));
            }
            if (trigger is not null)
            {
                argv.AddRange([options.Shell, "-c", TriggerScript, trigger]);
            }
            argv.AddRange(Fixed(options, system, request.Network));
            argv.AddRange(PerSlice(request, hostDirectory));
            argv.Add("--");
            if (trigger is not null)
            {
                argv.AddRange([options.Shell, "-c", ReleaseScript, "runner-slice-release"]);
            }
            argv.AddRange(request.Argv);
        }
        else
        {
            argv.AddRange(request.Argv.Select(a => HostPath(a, hostDirectory)));
        }
        return argv;
    }

    /// <summary>Without isolation the per-slice files stay where they are on the host.</summary>
    public static string HostPath(string path, string hostDirectory)
    {
        foreach (var (inside, folder) in new[] { (SandboxLayout.SliceDirectory, "slice"), (SandboxLayout.SecretsDirectory, "secrets") })
        {
            if (path == inside || path.StartsWith(inside + "/", StringComparison.Ordinal))
            {
                return System.IO.Path.Combine(hostDirectory, folder) + path[inside.Length..];
            }
        }
        return path;
    }

    /// <summary>Everything from <c>setpriv</c> to bwrap's <c>--</c>.</summary>
    public static List<string> Isolation(SliceLauncherOptions options, SystemView system, SandboxRequest request, string hostDirectory) =>
        [.. Setpriv(options), .. Fixed(options, system, request.Network), .. PerSlice(request, hostDirectory), "--"];

    /// <summary>
    /// A minimal <c>/dev</c>: the host's null, zero, full, random and urandom, and the fd links.
    /// bubblewrap's <c>--dev</c> also mounts a tmpfs, a devpts instance for terminals and
    /// <c>/dev/shm</c>, which a slice does not use, at about 0.5 ms more per launch.
    /// </summary>
    private static readonly string[] Devices =
    [
        "--dev-bind-try", "/dev/null", "/dev/null", "--dev-bind-try", "/dev/zero", "/dev/zero", "--dev-bind-try", "/dev/full", "/dev/full",
        "--dev-bind-try", "/dev/random", "/dev/random", "--dev-bind-try", "/dev/urandom", "/dev/urandom",
        "--symlink", "/proc/self/fd", "/dev/fd", "--symlink", "/proc/self/fd/0", "/dev/stdin",
        "--symlink", "/proc/self/fd/1", "/dev/stdout", "--symlink", "/proc/self/fd/2", "/dev/stderr",
    ];

    /// <summary>util-linux setpriv: the slice uid and gid, no supplementary groups, no new privileges.</summary>
    private static List<string> Setpriv(SliceLauncherOptions options) =>
    [
        options.Setpriv, "--reuid", options.Uid.ToString(CultureInfo.InvariantCulture), "--regid", options.Gid.ToString(CultureInfo.InvariantCulture),
        "--clear-groups", "--no-new-privs", "--",
    ];

    /// <summary>
    /// bubblewrap's arguments that are the same for every slice of a network mode: the namespaces,
    /// the process settings, the system view, <c>/proc</c> and <c>/dev</c>. It sets
    /// no-new-privileges itself, drops every capability, and maps root inside to whatever uid runs it.
    /// </summary>
    private static List<string> Fixed(SliceLauncherOptions options, SystemView system, SliceNetwork network)
    {
        List<string> argv =
        [
            options.Bwrap,
            "--unshare-user", "--uid", "0", "--gid", "0", "--disable-userns",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "slice", "--unshare-cgroup-try",
        ];
        if (network == SliceNetwork.None)
        {
            argv.Add("--unshare-net");
        }
        argv.AddRange(["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
            "--setenv", "PATH", Path, "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8"]);
        argv.AddRange(system.BwrapArguments);
        if (network == SliceNetwork.Host)
        {
            foreach (var file in SystemView.NetworkFiles)
            {
                argv.AddRange(["--ro-bind-try", file, file]);
            }
        }
        argv.AddRange(["--proc", "/proc"]);
        argv.AddRange(Devices);
        return argv;
    }

    /// <summary>
    /// bubblewrap's arguments of one slice: its environment, its <c>/tmp</c> (a tmpfs, whose pages
    /// count against the slice's memory limit), the per-slice directory (<c>slice/</c> and
    /// <c>secrets/</c> under one <c>/run</c> mount), the declared paths, then the root made read-only.
    /// </summary>
    /// <exception cref="ArgumentException">A declared path is one the sandbox builds itself, or an argument holds a NUL.</exception>
    public static List<string> PerSlice(SandboxRequest request, string hostDirectory)
    {
        if (request.ReadOnlyPaths.Concat(request.ReadWritePaths).Select(SandboxLayout.PathProblem).FirstOrDefault(p => p is not null) is { } problem)
        {
            throw new ArgumentException(problem, nameof(request));
        }
        var argv = new List<string>();
        foreach (var (name, value) in request.Environment)
        {
            argv.AddRange(["--setenv", name, value]);
        }
        argv.AddRange(["--tmpfs", "/tmp", "--ro-bind", hostDirectory, SandboxLayout.RunDirectory]);
        foreach (var path in request.ReadOnlyPaths)
        {
            argv.AddRange(["--ro-bind", path, path]);
        }
        foreach (var path in request.ReadWritePaths)
        {
            argv.AddRange(["--bind", path, path]);
        }
        argv.AddRange(["--remount-ro", "/", "--chdir", "/tmp"]);
        // execve ends an argument at a NUL: a value holding one would reach the slice cut short.
        if (argv.Any(a => a.Contains('\0', StringComparison.Ordinal)))
        {
            throw new ArgumentException("a sandbox argument holds a NUL character", nameof(request));
        }
        return argv;
    }
}
