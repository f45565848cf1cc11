using System.Diagnostics;
using System.Globalization;
using Runner.Slices.Cgroups;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>Removing a real cgroup (this machine's v1 pids hierarchy) that still counts a process.</summary>
public sealed class CgroupRemovalTests
{
    private const string PidsRoot = "/sys/fs/cgroup/pids";

    [Fact]
    public async Task A_cgroup_whose_process_is_still_counted_is_removed_once_the_kernel_lets_it_go()
    {
        Assert.True(Directory.Exists(PidsRoot), "this machine must have the cgroup v1 pids hierarchy");
        var directory = Path.Combine(PidsRoot, "runner-test-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(directory);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var sleeper = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        try
        {
            File.WriteAllText(Path.Combine(directory, "cgroup.procs"), sleeper.Id.ToString(CultureInfo.InvariantCulture));
            Assert.Equal([sleeper.Id], CgroupFiles.ReadPids(Path.Combine(directory, "cgroup.procs")));

            // The kernel refuses a cgroup that counts a process: the one-shot removal says so.
            var refused = Assert.ThrowsAny<IOException>(() => CgroupFiles.RemoveTree(directory));
            Assert.Equal(16, refused.HResult);

            var removal = CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, timeout.Token);
            Assert.True(Directory.Exists(directory));
            sleeper.Kill();
            await removal;

            Assert.False(Directory.Exists(directory));
        }
        finally
        {
            if (!sleeper.HasExited)
            {
                sleeper.Kill();
            }
            await sleeper.WaitForExitAsync(CancellationToken.None);
            if (Directory.Exists(directory))
            {
                await CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, CancellationToken.None);
            }
        }
    }
}
