using Runner.Slices.Cgroups;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>
/// The fast launch path: the launcher thread forks from inside the slice's cgroup (v1) and goes
/// home; cgroups are made ahead of time and removed after use; the slice starts as its uid.
/// </summary>
public sealed class LaunchPathTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    private CancellationToken Token => _timeout.Token;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task Every_worker_thread_is_back_in_the_worker_cgroup_after_launches()
    {
        var own = File.ReadAllText("/proc/self/cgroup");
        await using var node = await SliceNode.StartAsync(Token);
        for (var i = 0; i < 3; i++)
        {
            var (exit, _) = await node.RunAsync(SliceNode.Shell("echo ran"), Token);
            Assert.Equal(0, exit.ExitCode);
        }

        // The launcher thread starts the next sandbox ahead in the background, inside that sandbox's
        // cgroup for the instant of the fork: every thread is home once that is done.
        await Runner.Testing.SagaHarness.WaitUntilAsync(
            () => Task.FromResult(Directory.GetDirectories("/proc/self/task").All(t => ReadOrGone(Path.Combine(t, "cgroup")) is not { } c || c == own)),
            TimeSpan.FromSeconds(10), "every worker thread back in the worker's cgroup");
    }

    [Fact]
    public async Task The_shell_join_of_cgroup_v2_puts_a_sandbox_built_ahead_in_its_cgroup_before_its_slice_runs()
    {
        // cgroup v2 moves whole processes only: a shell writes its own pid into cgroup.procs and
        // execs setpriv, the trigger shell and the sandbox, which then waits for its slice. v1
        // hierarchies have cgroup.procs too, so this path runs here for real.
        Assert.True(OperatingSystem.IsLinux());
        await using var node = await SliceNode.StartAsync(Token);
        var options = node.Launcher.Options;
        var tree = new CgroupV1(StartupTests.V1Mounts(node.Launcher.Capabilities), options.CgroupBase, TimeProvider.System);
        var group = tree.Create("shell-join", new CgroupLimits(1, 64L * 1024 * 1024, 16));
        var view = Sandbox.SystemView.Create(options.SystemPaths, node.Dir.File("view"));
        var host = SliceDirectories.CreateEmpty(node.Dir.File("hosts"), "ahead", options.Uid, options.Gid);
        using var trigger = Sandbox.TriggerFifo.Create(host + ".go", options.Uid, options.Gid);
        var marker = LimitTests.Marker();
        var request = SliceNode.Shell($"cat /run/slice/greeting; exec sleep {marker}");
        var argv = Sandbox.SandboxCommand.Build(options, view, request, host, procsFiles: group.ProcsFiles, setpriv: true, trigger: trigger.Path);
        Assert.Equal([options.Shell, "-c", Sandbox.SandboxCommand.JoinScript], argv.Take(3));
        var start = new System.Diagnostics.ProcessStartInfo(argv[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, WorkingDirectory = "/" };
        foreach (var arg in argv.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = await Sandbox.LauncherThread.StartAsync(start);
        await Runner.Testing.SagaHarness.WaitUntilAsync(
            () => Task.FromResult(LimitTests.IsWaitingSandbox(process.Id)),
            TimeSpan.FromSeconds(10), "the sandbox is built and waits");
        Assert.Contains(process.Id, group.Pids());
        Assert.All(group.Pids(), p => Assert.True(ReadOrGone($"/proc/{p}/comm")?.Trim() == "bwrap" || LimitTests.IsBlockedOnTrigger(p), $"{p} is bubblewrap or the shell waiting in it"));
        Assert.Empty(LimitTests.ProcessesWith(marker));

        // The launch: the slice's files into the directory the sandbox shows at /run, then the trigger.
        SliceDirectories.Fill(host, request with { Files = new Dictionary<string, byte[]> { ["greeting"] = "up\n"u8.ToArray() } }, options.Uid, options.Gid);
        trigger.Fire();
        process.StandardInput.Close();
        Assert.Equal("up", await process.StandardOutput.ReadLineAsync(Token));
        var sleeper = 0;
        await Runner.Testing.SagaHarness.WaitUntilAsync(() =>
        {
            sleeper = LimitTests.ProcessesWith(marker).FirstOrDefault(p => ReadOrGone($"/proc/{p}/comm")?.Trim() == "sleep");
            return Task.FromResult(sleeper != 0);
        }, TimeSpan.FromSeconds(10), "the slice runs");

        Assert.Contains(sleeper, group.Pids());
        var uid = File.ReadAllLines($"/proc/{sleeper}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal([options.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture)], uid.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[1..].Distinct());
        await group.RemoveAsync(Token);
        await process.WaitForExitAsync(Token);
        view.Remove();
    }

    private static string? ReadOrGone(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
    }

    [Fact]
    public async Task The_launcher_thread_goes_home_even_when_joining_a_cgroup_fails()
    {
        var left = false;
        var start = new System.Diagnostics.ProcessStartInfo("/bin/true");

        await Assert.ThrowsAsync<IOException>(() => Sandbox.LauncherThread.StartAsync(start, () => throw new IOException("join failed"), () => left = true).WaitAsync(Token));

        Assert.True(left);
    }

    [Fact]
    public async Task A_slice_and_its_children_run_in_its_cgroup_as_the_slice_uid_from_the_start()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        var run = node.RunAsync(SliceNode.Shell($"sleep {marker} & echo up; wait"), Token);

        var pids = new List<int>();
        await Runner.Testing.SagaHarness.WaitUntilAsync(() =>
        {
            pids = LimitTests.ProcessesWith(marker).ToList();
            return Task.FromResult(pids.Count > 0);
        }, TimeSpan.FromSeconds(10), "the slice's child runs");
        var child = pids[0];
        var cgroups = File.ReadAllLines($"/proc/{child}/cgroup");
        foreach (var @base in node.Launcher.Capabilities.CgroupBases)
        {
            var hierarchy = Path.GetFileName(Path.GetDirectoryName(@base))!;
            var line = Assert.Single(cgroups, l => l.Split(':')[1].Split(',').Contains(hierarchy));
            Assert.StartsWith("/" + Path.GetFileName(@base) + "/", line.Split(':')[2], StringComparison.Ordinal);
        }
        var uid = File.ReadAllLines($"/proc/{child}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal(["65534", "65534", "65534", "65534"], uid.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[1..]);

        foreach (var pid in pids)
        {
            Native.Kill(pid, Native.SigKill);
        }
        var (exit, _) = await run;
        Assert.True(exit.ExitCode is not null || exit.Signal is not null);
        Assert.Null(exit.SetupError);
    }

    [Fact]
    public async Task Used_cgroups_are_removed_and_spares_are_gone_after_the_launcher_stops()
    {
        var node = await SliceNode.StartAsync(Token);
        await using (node)
        {
            for (var i = 0; i < 4; i++)
            {
                var (exit, _) = await node.RunAsync(SliceNode.Shell("true"), Token);
                Assert.Equal(0, exit.ExitCode);
            }
            // Spares exist while it runs, but never more than a few, however many slices ran: two
            // empty cgroups, the one a sandbox waits in, and a used one being removed.
            Assert.All(node.Launcher.Capabilities.CgroupBases, b => Assert.InRange(Directory.GetDirectories(b).Length, 0, 4));
            await node.Launcher.DisposeAsync();
            Assert.All(node.Launcher.Capabilities.CgroupBases, b => Assert.Empty(Directory.GetDirectories(b)));
        }
    }
}
