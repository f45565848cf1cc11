using Microsoft.Extensions.Logging.Abstractions;
using Runner.Slices.Cgroups;
using Runner.Testing;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>
/// A launcher on this machine's real namespaces and cgroups, with a cgroup base and a run directory
/// of its own, so tests never touch each other's slices. A node that cannot isolate fails the test.
/// </summary>
internal sealed class SliceNode : IAsyncDisposable
{
    private SliceNode(SliceLauncher launcher, TempDirectory dir)
    {
        Launcher = launcher;
        Dir = dir;
    }

    public SliceLauncher Launcher { get; }

    public TempDirectory Dir { get; }

    public static SliceLauncherOptions Options(TempDirectory dir, string? cgroupBase = null) => new()
    {
        RunDirectory = dir.File("run"),
        CgroupBase = cgroupBase ?? "runner-test-" + Guid.NewGuid().ToString("N")[..10],
    };

    public static async Task<SliceNode> StartAsync(CancellationToken cancellationToken, string? cgroupBase = null)
    {
        var dir = new TempDirectory("runner-slices");
        var launcher = await SliceLauncher.StartAsync(Options(dir, cgroupBase), NullLogger.Instance, TimeProvider.System, cancellationToken);
        Assert.True(launcher.Capabilities.Isolated, "this machine must isolate slices: " + string.Join("; ", launcher.Capabilities.Problems));
        return new SliceNode(launcher, dir);
    }

    public static SandboxRequest Shell(string script, CgroupLimits? limits = null, TimeSpan? timeout = null) => new()
    {
        Id = "t-" + Guid.NewGuid().ToString("N")[..12],
        Argv = ["/bin/sh", "-c", script],
        Limits = limits ?? new CgroupLimits(1, 256L * 1024 * 1024, 64),
        Timeout = timeout ?? TimeSpan.FromSeconds(30),
    };

    /// <summary>Runs the request and collects its stdout lines.</summary>
    public async Task<(SliceExit Exit, List<string> Stdout)> RunAsync(SandboxRequest request, CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        var exit = await Launcher.RunAsync(request, (line, _) =>
        {
            lock (lines)
            {
                lines.Add(line);
            }
            return ValueTask.FromResult(true);
        }, cancellationToken);
        return (exit, lines);
    }

    public async ValueTask DisposeAsync()
    {
        await Launcher.DisposeAsync();
        foreach (var directory in Launcher.Capabilities.CgroupBases)
        {
            await CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, CancellationToken.None);
        }
        Dir.Dispose();
    }
}
