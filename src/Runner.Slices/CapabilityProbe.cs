using System.Diagnostics;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;

namespace Runner.Slices;

/// <summary>
/// Probes at start what slices can get on this node: runs a real sandbox (as the slice uid, every
/// namespace) around <c>/bin/true</c>, and on failure one namespace at a time to say which is
/// missing; finds the cgroup tree and checks it is writable.
/// </summary>
internal static class CapabilityProbe
{
    private static readonly TimeSpan s_probeTimeout = TimeSpan.FromSeconds(10);

    private static readonly (string Name, string[] Flags)[] s_namespaceFlags =
    [
        ("user", []),
        ("pid", ["--unshare-pid"]),
        ("net", ["--unshare-net"]),
        ("uts", ["--unshare-uts"]),
        ("ipc", ["--unshare-ipc"]),
    ];

    public static async Task<(SliceCapabilities Capabilities, CgroupTree? Cgroups)> ProbeAsync(SliceLauncherOptions options, SystemView system, TimeProvider time, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var tree = CgroupDetector.Detect(options.CgroupBase, time, problems);
        string? sandbox = null;
        string? version = null;
        var namespaces = new List<string>();
        var (versionExit, versionOutput) = await RunAsync([options.Bwrap, "--version"], cancellationToken);
        if (versionExit != 0)
        {
            problems.Add($"the sandbox tool '{options.Bwrap}' does not run: {versionOutput.Trim()}");
        }
        else
        {
            sandbox = options.Bwrap;
            version = versionOutput.Trim();
            var full = new SandboxRequest { Id = "probe", Argv = ["/bin/true"], Limits = new CgroupLimits(1, 64L * 1024 * 1024, 16), Timeout = s_probeTimeout };
            var directory = SliceDirectories.CreateEmpty(Path.GetTempPath(), "runner-slice-probe-" + Guid.NewGuid().ToString("N"), options.Uid, options.Gid);
            try
            {
                var (exit, output) = await RunAsync(SandboxCommand.Isolation(options, system, full, directory).Concat(full.Argv).ToList(), cancellationToken);
                if (exit == 0)
                {
                    namespaces.AddRange(SliceCapabilities.AllNamespaces);
                }
                else
                {
                    problems.Add($"a sandbox as uid {options.Uid} fails: {output.Trim()}");
                    namespaces.AddRange(await NamespacesAsync(options, cancellationToken));
                    var missing = SliceCapabilities.AllNamespaces.Except(namespaces, StringComparer.Ordinal).ToList();
                    if (missing.Count > 0)
                    {
                        problems.Add($"namespaces not available: {string.Join(", ", missing)}");
                    }
                }
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        var controllers = tree is null ? [] : Controllers(tree);
        var capabilities = new SliceCapabilities
        {
            Sandbox = sandbox,
            SandboxVersion = version,
            Namespaces = namespaces,
            CgroupVersion = tree?.Version,
            CgroupControllers = controllers,
            CgroupBases = tree?.BaseDirectories ?? [],
            Uid = options.Uid,
            Problems = problems,
        };
        return (capabilities, tree);
    }

    private static List<string> Controllers(CgroupTree tree) => tree switch
    {
        CgroupV1 v1 => v1.Controllers.ToList(),
        _ => ["cpu", "memory", "pids"],
    };

    private static async Task<List<string>> NamespacesAsync(SliceLauncherOptions options, CancellationToken cancellationToken)
    {
        var available = new List<string>();
        var uid = options.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var gid = options.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (name, flags) in s_namespaceFlags)
        {
            List<string> argv = [options.Setpriv, "--reuid", uid, "--regid", gid, "--clear-groups", "--no-new-privs", "--",
                options.Bwrap, "--unshare-user", "--uid", "0", "--gid", "0", .. flags, "--ro-bind", "/", "/", "/bin/true"];
            if ((await RunAsync(argv, cancellationToken)).Exit == 0)
            {
                available.Add(name);
                if (name == "user")
                {
                    available.Add("mount"); // bubblewrap always makes a mount namespace
                }
            }
        }
        return available;
    }

    private static async Task<(int Exit, string Output)> RunAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in argv.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }
        Process process;
        try
        {
            process = await LauncherThread.StartAsync(start);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return (-1, ex.Message);
        }
        using (process)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(s_probeTimeout);
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                return (-1, "timed out");
            }
            return (process.ExitCode, await stdout + await stderr);
        }
    }
}
