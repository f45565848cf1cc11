using Runner.Slices.Cgroups;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>Limits enforced by the slice's real cgroup; the worker (this test process) lives through each.</summary>
public sealed class LimitTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(90));

    private CancellationToken Token => _timeout.Token;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task A_fork_bomb_stops_at_the_pids_limit()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = Marker();
        var request = SliceNode.Shell($"i=0; while [ $i -lt 300 ]; do sleep {marker} & i=$((i+1)); done; echo forked; wait",
            new CgroupLimits(1, 256L * 1024 * 1024, 32), TimeSpan.FromSeconds(5));

        var (exit, _) = await node.RunAsync(request, Token);

        Assert.True(exit.PidsLimited, "the pids limit refused forks");
        Assert.Contains(exit.StderrTail, l => l.Contains("fork", StringComparison.OrdinalIgnoreCase));
        Assert.Empty(ProcessesWith(marker));
    }

    [Fact]
    public async Task A_memory_hog_is_oom_killed_and_reported()
    {
        await using var node = await SliceNode.StartAsync(Token);
        // tail keeps a line until its newline: 1 GB of zeros without one grows until the limit.
        var request = SliceNode.Shell("head -c 1000000000 /dev/zero | tail; echo status=$?", new CgroupLimits(1, 64L * 1024 * 1024, 64));

        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.True(exit.OomKilled, "memory.oom_control counts an OOM kill");
        Assert.Contains("status=137", stdout);
        Assert.NotNull(exit.PeakMemoryBytes);
        Assert.InRange(exit.PeakMemoryBytes!.Value, 32L * 1024 * 1024, 64L * 1024 * 1024);
    }

    [Fact]
    public async Task A_busy_loop_under_a_twentieth_of_a_core_is_held_to_it_and_reports_the_throttling()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var (limited, _) = await node.RunAsync(SliceNode.Shell("while :; do :; done", new CgroupLimits(0.05, 64L * 1024 * 1024, 16), TimeSpan.FromSeconds(4)), Token);

        Assert.True(limited.TimedOut);
        // How much CPU a loop gets depends on what else the machine runs: CI runs other test assemblies beside this
        // one, and gave such a loop 0.18 of a core on average. So the quota is a twentieth of a core (5 ms per 100 ms
        // period), which a loop reaches in nearly every period it runs in, and the proof that the quota acted is the
        // kernel's own count of the time it held the group back. Without the quota it is 0.
        Assert.NotNull(limited.CpuThrottledMs);
        Assert.True(limited.CpuThrottledMs > 0, "the cgroup's CPU quota held the loop back");
        // The cap itself: the quota over the run, and at most a scheduler tick past it in a period.
        var share = (double)limited.CpuMs!.Value / limited.WallMs;
        Assert.InRange(share, 0.0, 0.15);
    }

    [Fact]
    public async Task A_slice_that_stays_under_its_quota_reports_no_throttling()
    {
        await using var node = await SliceNode.StartAsync(Token);
        // A few milliseconds of CPU over a second, a whole core allowed: no period can reach the quota.
        var (exit, stdout) = await node.RunAsync(SliceNode.Shell("sleep 1; echo slept", new CgroupLimits(1, 64L * 1024 * 1024, 16)), Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("slept", stdout);
        Assert.Equal(0, exit.CpuThrottledMs);
    }

    [Fact]
    public async Task A_timeout_kills_the_slice_and_every_child()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = Marker();
        var request = SliceNode.Shell($"sleep {marker} & (sleep {marker} &) ; echo started; wait", timeout: TimeSpan.FromSeconds(1));

        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.True(exit.TimedOut);
        Assert.Contains("started", stdout);
        Assert.Equal(9, exit.Signal);
        // The sandbox the launcher starts ahead for the next slice carries the same command line
        // until it blocks on its trigger FIFO (then IsWaitingSandbox leaves it out): give it a moment
        // to get there. A child that survived the kill would stay and fail this.
        await WaitUntilGoneAsync(marker);
    }

    /// <summary>Polls until no process but a waiting sandbox carries <paramref name="marker"/>; fails naming them after 5 s.</summary>
    private async Task WaitUntilGoneAsync(string marker)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        List<int> left;
        while ((left = ProcessesWith(marker)).Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, Token);
        }
        Assert.Empty(left);
    }

    [Fact]
    public async Task Cancelling_a_slice_kills_it_and_removes_its_cgroup()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = Marker();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var request = SliceNode.Shell($"echo up; exec sleep {marker}");
        var run = node.Launcher.RunAsync(request, (line, _) =>
        {
            cancel.Cancel();
            return ValueTask.FromResult(true);
        }, cancel.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        await WaitUntilGoneAsync(marker);
        Assert.All(node.Launcher.Capabilities.CgroupBases, b => Assert.False(Directory.Exists(Path.Combine(b, request.Id))));
    }

    /// <summary>A sleep length no other process on the machine uses, to find this test's processes.</summary>
    internal static string Marker() => "3" + Random.Shared.Next(1_000_000, 9_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Processes whose command line holds <paramref name="marker"/>, but for a sandbox started ahead
    /// that still waits for its slice (<see cref="IsWaitingSandbox"/>): it has the next slice's
    /// command line, which in these tests is the same, and nothing of it runs.
    /// </summary>
    internal static List<int> ProcessesWith(string marker)
    {
        var found = new List<int>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(marker, StringComparison.Ordinal) && !IsWaitingSandbox(pid))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                // not ours to read
            }
        }
        return found;
    }

    /// <summary>
    /// A sandbox started ahead, waiting: the release shell inside it blocked on its trigger FIFO
    /// (<see cref="IsBlockedOnTrigger"/>), or a bubblewrap process whose children all are waiting
    /// (the sandbox's init, and the outer process above it).
    /// </summary>
    internal static bool IsWaitingSandbox(int pid)
    {
        try
        {
            if (IsBlockedOnTrigger(pid))
            {
                return true;
            }
            if (File.ReadAllText($"/proc/{pid}/comm").Trim() != "bwrap")
            {
                return false;
            }
            var children = Directory.GetDirectories("/proc")
                .Where(d => int.TryParse(Path.GetFileName(d), out _))
                .Where(d => ParentOf(d) == pid)
                .Select(d => int.Parse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture))
                .ToList();
            return children.Count > 0 && children.All(IsWaitingSandbox);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// The shell a sandbox built ahead runs inside, blocked on its trigger FIFO: its <c>read</c>
    /// builtin reads standard input, which the shell points at the FIFO (fd 3) for that read.
    /// </summary>
    internal static bool IsBlockedOnTrigger(int pid)
    {
        try
        {
            var argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return argv.Length > 3 && argv[3] == "runner-slice-release"
                && File.ReadAllText($"/proc/{pid}/syscall").StartsWith("0 0x0 ", StringComparison.Ordinal)
                && new FileInfo($"/proc/{pid}/fd/0").LinkTarget is { } input && input.EndsWith(".go", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static int ParentOf(string directory)
    {
        try
        {
            var line = File.ReadLines(Path.Combine(directory, "status")).First(l => l.StartsWith("PPid:", StringComparison.Ordinal));
            return int.Parse(line["PPid:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }
}
