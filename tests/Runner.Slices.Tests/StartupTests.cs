using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;
using Runner.Testing;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>What a worker finds and cleans up when it starts.</summary>
public sealed class StartupTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    private CancellationToken Token => _timeout.Token;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task The_probe_reports_every_namespace_and_the_v1_controllers_of_this_machine()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var capabilities = node.Launcher.Capabilities;

        Assert.Equal(SliceCapabilities.AllNamespaces.Order(), capabilities.Namespaces.Order());
        Assert.Equal("v1", capabilities.CgroupVersion);
        Assert.Superset(new HashSet<string> { "cpu", "memory", "pids" }, capabilities.CgroupControllers.ToHashSet());
        Assert.StartsWith("bubblewrap", capabilities.SandboxVersion);
    }

    [Fact]
    public async Task Without_a_sandbox_tool_the_node_fails_closed_and_says_why()
    {
        using var dir = new TempDirectory("runner-slices");
        var options = SliceNode.Options(dir) with { Bwrap = "/nonexistent/bwrap" };
        await using var launcher = await SliceLauncher.StartAsync(options, NullLogger.Instance, TimeProvider.System, Token);
        try
        {
            Assert.False(launcher.Capabilities.Isolated);
            Assert.Contains(launcher.Capabilities.Problems, p => p.Contains("/nonexistent/bwrap", StringComparison.Ordinal));

            var exit = await launcher.RunAsync(SliceNode.Shell("echo ran"), null, Token);
            Assert.StartsWith("isolation unavailable", exit.SetupError);
            Assert.Null(exit.ExitCode);

            // isolation: none still runs, confined to its cgroup.
            var (plain, _) = (await launcher.RunAsync(SliceNode.Shell("echo ran") with { Isolated = false }, null, Token), 0);
            Assert.Equal(0, plain.ExitCode);
            Assert.NotNull(plain.CpuMs);
        }
        finally
        {
            await launcher.DisposeAsync();
            foreach (var directory in launcher.Capabilities.CgroupBases)
            {
                await CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, CancellationToken.None);
            }
        }
    }

    [Fact]
    public async Task A_starting_worker_kills_and_removes_the_slice_cgroups_a_dead_worker_left()
    {
        var cgroupBase = "runner-test-" + Guid.NewGuid().ToString("N")[..10];
        await using (var first = await SliceNode.StartAsync(Token, cgroupBase))
        {
            // What a SIGKILLed worker leaves: a cgroup with a live process in it, started without
            // bubblewrap's parent-death signal, as a process forked in the instant before it is set.
            var tree = new CgroupV1(V1Mounts(first.Launcher.Capabilities), cgroupBase, TimeProvider.System);
            var group = tree.Create("left-1", new CgroupLimits(1, 64L * 1024 * 1024, 16));
            var marker = LimitTests.Marker();
            var start = new ProcessStartInfo("/bin/sh", ["-c", SandboxCommand.JoinScript, "join", .. group.ProcsFiles, "--", "sleep", marker]);
            using var orphan = Process.Start(start)!;
            await SagaHarness.WaitUntilAsync(() => Task.FromResult(group.Pids().Count == 1), TimeSpan.FromSeconds(10), "the orphan joined its cgroup");

            await using var second = await SliceNode.StartAsync(Token, cgroupBase);

            Assert.Empty(LimitTests.ProcessesWith(marker));
            Assert.All(group.Directories, d => Assert.False(Directory.Exists(d)));
            await orphan.WaitForExitAsync(Token);
        }
    }

    internal static Dictionary<string, string> V1Mounts(SliceCapabilities capabilities)
    {
        var mounts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var parts = line.Split(" - ");
            var fields = parts[0].Split(' ');
            var super = parts[1].Split(' ');
            if (super[0] != "cgroup")
            {
                continue;
            }
            foreach (var controller in capabilities.CgroupControllers)
            {
                if (super[2].Split(',').Contains(controller))
                {
                    mounts.TryAdd(controller, fields[4]);
                }
            }
        }
        return mounts;
    }
}
