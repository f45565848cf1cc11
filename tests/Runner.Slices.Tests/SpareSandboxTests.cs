using System.Diagnostics;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;
using Runner.Testing;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>
/// The sandbox started ahead: it waits in its cgroup as the slice uid for the next slice of the same
/// program, which hands it the per-slice arguments on stdin.
/// </summary>
public sealed class SpareSandboxTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(90));

    private CancellationToken Token => _timeout.Token;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task A_sandbox_built_ahead_gets_each_slice_its_own_files_secrets_and_limits()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var a = Directory.CreateDirectory(node.Dir.File("a")).FullName;
        var b = Directory.CreateDirectory(node.Dir.File("b")).FullName;
        await File.WriteAllTextAsync(Path.Combine(a, "x.txt"), "in-a", Token);
        await File.WriteAllTextAsync(Path.Combine(b, "x.txt"), "in-b", Token);
        // One kind for all three slices (program, environment, paths): what differs is each one's
        // own spec, secret and limits, handed to a sandbox that was built before the slice came.
        const string script = """
            echo "who=$(cat /run/slice/who)"
            echo "secret=$(cat /run/secrets/token)"
            echo "env=$MODE"
            echo "mine=$(cat "$MINE/x.txt")"
            if [ -e "$OTHER/x.txt" ]; then echo other=visible; else echo other=hidden; fi
            head -c "$(cat /run/slice/alloc)" /dev/zero | tail > /dev/null
            echo status=$?
            """;
        SandboxRequest Slice(string who, long memory, long alloc) => SliceNode.Shell(script, new CgroupLimits(1, memory, 64)) with
        {
            Environment = new Dictionary<string, string> { ["MODE"] = "same", ["MINE"] = a, ["OTHER"] = b },
            Files = new Dictionary<string, byte[]>
            {
                ["who"] = System.Text.Encoding.UTF8.GetBytes(who),
                ["alloc"] = System.Text.Encoding.UTF8.GetBytes(alloc.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            },
            Secrets = new Dictionary<string, byte[]> { ["token"] = System.Text.Encoding.UTF8.GetBytes("token-" + who) },
            ReadOnlyPaths = [a],
        };

        var (first, firstOut) = await node.RunAsync(Slice("one", 512L * 1024 * 1024, 150_000_000), Token);
        var hitsBefore = node.Launcher.SpareHits;
        // Down to 64 MiB in a sandbox built for 512 MiB, then up again: each slice gets its own limit.
        await node.Launcher.WhenSparesStartedAsync();
        var (second, secondOut) = await node.RunAsync(Slice("two", 64L * 1024 * 1024, 1_000_000_000), Token);
        await node.Launcher.WhenSparesStartedAsync();
        var (third, thirdOut) = await node.RunAsync(Slice("three", 512L * 1024 * 1024, 150_000_000), Token);

        Assert.Equal(2, node.Launcher.SpareHits - hitsBefore);
        Assert.Equal(["who=one", "secret=token-one", "env=same", "mine=in-a", "other=hidden", "status=0"], firstOut);
        Assert.Equal(["who=two", "secret=token-two", "env=same", "mine=in-a", "other=hidden", "status=137"], secondOut);
        Assert.Equal(["who=three", "secret=token-three", "env=same", "mine=in-a", "other=hidden", "status=0"], thirdOut);
        Assert.False(first.OomKilled);
        Assert.True(second.OomKilled, "the second slice's 64 MiB limit was written to the cgroup its sandbox waited in");
        Assert.InRange(second.PeakMemoryBytes!.Value, 32L * 1024 * 1024, 64L * 1024 * 1024);
        Assert.False(third.OomKilled, "the third slice's 512 MiB limit replaced the 64 MiB one");
        Assert.All(new[] { first, second, third }, e => Assert.Null(e.SetupError));
        // Nothing of one slice stays for the next: its directory went with it.
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(node.Dir.File("run")), e => !Path.GetFileName(e).StartsWith(".etc-", StringComparison.Ordinal)
            && !IsWaitingDirectory(e));
    }

    [Fact]
    public async Task A_slice_whose_environment_or_paths_differ_never_gets_a_sandbox_built_for_others()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var a = Directory.CreateDirectory(node.Dir.File("a")).FullName;
        var b = Directory.CreateDirectory(node.Dir.File("b")).FullName;
        await File.WriteAllTextAsync(Path.Combine(a, "x.txt"), "in-a", Token);
        await File.WriteAllTextAsync(Path.Combine(b, "x.txt"), "in-b", Token);
        var request = SliceNode.Shell("echo \"$MODE:$(cat /data/x.txt 2>/dev/null || cat " + a + "/x.txt 2>/dev/null || cat " + b + "/x.txt)\"");
        var hits = node.Launcher.SpareHits;

        var outputs = new List<string>();
        foreach (var (mode, path) in new[] { ("one", a), ("two", a), ("two", b), ("two", b) })
        {
            await node.Launcher.WhenSparesStartedAsync();
            var (exit, stdout) = await node.RunAsync(request with { Environment = new Dictionary<string, string> { ["MODE"] = mode }, ReadOnlyPaths = [path] }, Token);
            Assert.Equal(0, exit.ExitCode);
            outputs.Add(Assert.Single(stdout));
        }

        Assert.Equal(["one:in-a", "two:in-a", "two:in-b", "two:in-b"], outputs);
        // Only the last launch was of a kind launched before.
        Assert.Equal(1, node.Launcher.SpareHits - hits);
    }

    [Fact]
    public async Task Another_program_starts_its_own_sandbox_two_kinds_wait_and_none_outlives_the_launcher()
    {
        var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        await using (node)
        {
            var (first, _) = await node.RunAsync(SliceNode.Shell($"echo {marker}-one"), Token);
            var hits = node.Launcher.SpareHits;
            var (second, secondOut) = await node.RunAsync(SliceNode.Shell($"echo {marker}-two"), Token);

            Assert.Equal(0, first.ExitCode);
            Assert.Equal([$"{marker}-two"], secondOut);
            Assert.Equal(hits, node.Launcher.SpareHits);
            // One sandbox waits for each program launched last (two kinds are kept).
            // Until it blocks on its trigger FIFO, a sandbox being built carries the command line
            // too: wait for both to block, then check that nothing else carries it.
            await SagaHarness.WaitUntilAsync(() => Task.FromResult(CommandLinesWith($"{marker}-one").Any(LimitTests.IsWaitingSandbox)
                    && CommandLinesWith($"{marker}-two").Any(LimitTests.IsWaitingSandbox)
                    && CommandLinesWith(marker).All(LimitTests.IsWaitingSandbox)),
                TimeSpan.FromSeconds(10), "a sandbox waits for each program");
            Assert.All(CommandLinesWith(marker), p => Assert.True(LimitTests.IsWaitingSandbox(p), $"{p} waits for its slice"));
            // A third program makes room: the sandbox of the least recent one is discarded.
            var (third, _) = await node.RunAsync(SliceNode.Shell($"echo {marker}-three"), Token);
            Assert.Equal(0, third.ExitCode);
            await SagaHarness.WaitUntilAsync(() => Task.FromResult(CommandLinesWith($"{marker}-one").Count == 0 && CommandLinesWith($"{marker}-three").Count > 0),
                TimeSpan.FromSeconds(10), "the least recent program's sandbox is gone");

            await node.Launcher.DisposeAsync();
            Assert.Empty(CommandLinesWith(marker));
        }
    }

    [Fact]
    public async Task A_sandbox_built_ahead_runs_nothing_until_triggered_and_reads_its_trigger_read_only()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        var request = SliceNode.Shell($"echo {marker}");
        Assert.Equal([marker], (await node.RunAsync(request, Token)).Stdout);
        var waiting = new List<int>();
        // Until the list holds the shell blocked on its trigger: /proc is listed before each process is looked at,
        // so a listing taken just before the shell was forked finds bubblewrap waiting (its shell blocked by the
        // time it is looked at) without the shell itself.
        await SagaHarness.WaitUntilAsync(() =>
        {
            waiting = CommandLinesWith(marker).Where(LimitTests.IsWaitingSandbox).ToList();
            return Task.FromResult(waiting.Any(LimitTests.IsBlockedOnTrigger));
        }, TimeSpan.FromSeconds(10), "a sandbox is built for the next slice");

        // Only bubblewrap and the shell inside it run, the shell blocked on its trigger FIFO, held
        // read-only: once the worker's side closes (the worker gone, even by SIGKILL) the read meets
        // end of file and the sandbox exits without running its program.
        Assert.All(waiting, p => Assert.True(File.ReadAllText($"/proc/{p}/comm").Trim() == "bwrap" || LimitTests.IsBlockedOnTrigger(p), $"{p} is bubblewrap or the shell waiting in it"));
        var blocked = Assert.Single(waiting, LimitTests.IsBlockedOnTrigger);
        Assert.EndsWith(".go", new FileInfo($"/proc/{blocked}/fd/0").LinkTarget, StringComparison.Ordinal);
        var flags = File.ReadLines($"/proc/{blocked}/fdinfo/0").Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
        Assert.Equal(0, Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & 3); // O_RDONLY

        // The next slice of that kind releases it.
        await node.Launcher.WhenSparesStartedAsync();
        var hits = node.Launcher.SpareHits;
        Assert.Equal([marker], (await node.RunAsync(request, Token)).Stdout);
        Assert.Equal(hits + 1, node.Launcher.SpareHits);
    }

    [Fact]
    public async Task Network_modes_of_one_program_each_keep_a_sandbox_waiting()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var request = SliceNode.Shell("cat /proc/net/dev | tail -n +3 | wc -l");
        var hits = node.Launcher.SpareHits;
        var outputs = new List<string>();
        foreach (var network in new[] { SliceNetwork.None, SliceNetwork.Host, SliceNetwork.None, SliceNetwork.Host, SliceNetwork.None })
        {
            await node.Launcher.WhenSparesStartedAsync();
            var (exit, stdout) = await node.RunAsync(request with { Network = network }, Token);
            Assert.Equal(0, exit.ExitCode);
            outputs.Add(stdout[^1].Trim());
        }

        // The first of each mode starts its own; the other three find theirs waiting.
        Assert.Equal(3, node.Launcher.SpareHits - hits);
        Assert.Equal("1", outputs[0]);
        Assert.Equal(outputs[0], outputs[2]);
        Assert.Equal(outputs[0], outputs[4]);
        Assert.NotEqual("1", outputs[1]);
        Assert.Equal(outputs[1], outputs[3]);
    }

    [Fact]
    public async Task A_declared_directory_made_again_since_the_sandbox_was_built_is_not_written_through_the_old_one()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var output = node.Dir.File("out");
        void MakeOutput()
        {
            Directory.CreateDirectory(output);
            if (OperatingSystem.IsLinux())
            {
                File.SetUnixFileMode(output, (UnixFileMode)0x1FF); // 0777: the slice uid writes here
            }
        }
        MakeOutput();
        var request = SliceNode.Shell($"echo \"$(cat /run/slice/n)\" > {output}/result.txt") with { ReadWritePaths = [output] };
        SandboxRequest Run(int n) => request with { Files = new Dictionary<string, byte[]> { ["n"] = System.Text.Encoding.UTF8.GetBytes(n.ToString(System.Globalization.CultureInfo.InvariantCulture)) } };
        Assert.Equal(0, (await node.RunAsync(Run(1), Token)).Exit.ExitCode);
        // Built: blocked before exec, with the output directory bound.
        await SagaHarness.WaitUntilAsync(() => Task.FromResult(CommandLinesWith(output).Any(LimitTests.IsBlockedOnTrigger)),
            TimeSpan.FromSeconds(10), "the next sandbox is built");
        // And its start complete: a launch leaves one still starting to a later slice, so the second run would
        // start its own and build no spare after it, and the third would find this stale one.
        await node.Launcher.WhenSparesStartedAsync();
        var hits = node.Launcher.SpareHits;

        // The pipeline's clean-up between runs: the output directory removed and made again.
        Directory.Delete(output, recursive: true);
        MakeOutput();
        var (exit, _) = await node.RunAsync(Run(2), Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("2", File.ReadAllText(Path.Combine(output, "result.txt")).Trim());
        Assert.Equal(hits, node.Launcher.SpareHits);
        // Unchanged paths: the next one is served by a sandbox built ahead again.
        await node.Launcher.WhenSparesStartedAsync();
        Assert.Equal(0, (await node.RunAsync(Run(3), Token)).Exit.ExitCode);
        Assert.Equal("3", File.ReadAllText(Path.Combine(output, "result.txt")).Trim());
        Assert.Equal(hits + 1, node.Launcher.SpareHits);
    }

    [Fact]
    public async Task A_waiting_sandbox_that_died_is_replaced_by_one_started_on_the_spot()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        var request = SliceNode.Shell($"echo {marker}");
        Assert.Equal(0, (await node.RunAsync(request, Token)).Exit.ExitCode);
        var waiting = await WaitingSandboxAsync(marker);
        // Until its start is complete, the launcher leaves a sandbox to a later slice.
        await node.Launcher.WhenSparesStartedAsync();
        var hits = node.Launcher.SpareHits;

        // As a sweep by another worker on the same cgroup base would: every process of it. Dead is
        // enough: a zombie the worker has not reaped yet still looks alive to Process.HasExited.
        var killed = Sweep(node);
        Assert.Contains(waiting, killed);
        await SagaHarness.WaitUntilAsync(() => Task.FromResult(killed.All(Dead)), TimeSpan.FromSeconds(10), "the waiting sandbox is dead");
        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Null(exit.SetupError);
        Assert.Equal([marker], stdout);
        Assert.Equal(hits, node.Launcher.SpareHits);
    }

    [Fact]
    public async Task A_waiting_sandbox_dies_with_its_outer_process_and_the_slice_runs_in_one_started_on_the_spot()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        var request = SliceNode.Shell($"echo {marker}");
        Assert.Equal(0, (await node.RunAsync(request, Token)).Exit.ExitCode);
        var waiting = await WaitingSandboxAsync(marker);
        // Until its start is complete, the launcher leaves a sandbox to a later slice.
        await node.Launcher.WhenSparesStartedAsync();
        var hits = node.Launcher.SpareHits;

        // Only the worker's own child, bubblewrap's outer process: the parent-death signal, set
        // before the shell inside began to wait, ends the rest of the sandbox with it. Nothing is
        // left that a byte could release into the slice with nothing watching it.
        var outer = waiting;
        while (LimitTests.ParentOf($"/proc/{outer}") is var parent && parent != Environment.ProcessId && parent > 1)
        {
            outer = parent;
        }
        Assert.NotEqual(waiting, outer);
        Native.Kill(outer, Native.SigKill);
        await SagaHarness.WaitUntilAsync(() => Task.FromResult(Dead(outer) && Dead(waiting)), TimeSpan.FromSeconds(10), "the sandbox dies with its outer process");
        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal([marker], stdout);
        Assert.Equal(hits, node.Launcher.SpareHits);
    }

    [Fact]
    public async Task A_sandbox_that_dies_after_the_slice_was_handed_to_it_but_before_it_took_it_is_replaced_on_the_spot()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        var request = SliceNode.Shell($"echo {marker}");
        Assert.Equal(0, (await node.RunAsync(request, Token)).Exit.ExitCode);
        var waiting = await WaitingSandboxAsync(marker);
        // Until its start is complete, the launcher leaves a sandbox to a later slice.
        await node.Launcher.WhenSparesStartedAsync();
        var hits = node.Launcher.SpareHits;

        // Stopped, it looks alive to the launcher, which hands it the slice, but it cannot take it;
        // then a sweep kills it: the trigger byte is still in the FIFO when the sandbox has ended.
        // Stopped means the stop took effect: a process woken for it but not yet run would find the
        // byte first and take it.
        Native.Kill(waiting, SigStop);
        await SagaHarness.WaitUntilAsync(() => Task.FromResult(State(waiting) == 'T'), TimeSpan.FromSeconds(10), "the sandbox is stopped");
        var run = node.RunAsync(request, Token);
        await SagaHarness.WaitUntilAsync(() => Task.FromResult(node.Launcher.SpareHits == hits + 1 || run.IsCompleted), TimeSpan.FromSeconds(10), "the slice is handed to the sandbox");
        Assert.False(run.IsCompleted, "the run waits for the sandbox it handed the slice to");
        Assert.Contains(waiting, Sweep(node));
        var (exit, stdout) = await run;

        Assert.Equal(0, exit.ExitCode);
        Assert.Null(exit.SetupError);
        Assert.Equal([marker], stdout);
        Assert.Equal(hits, node.Launcher.SpareHits);
    }

    private const int SigStop = 19;

    /// <summary>Waits until the sandbox built ahead for <paramref name="marker"/> is blocked on its trigger FIFO; the shell inside it blocked there.</summary>
    private static async Task<int> WaitingSandboxAsync(string marker)
    {
        var blocked = 0;
        await SagaHarness.WaitUntilAsync(() =>
        {
            blocked = CommandLinesWith(marker).FirstOrDefault(BlockedOnTrigger);
            return Task.FromResult(blocked != 0);
        }, TimeSpan.FromSeconds(10), "a sandbox waits");
        return blocked;
    }

    private static bool BlockedOnTrigger(int pid) => LimitTests.IsBlockedOnTrigger(pid);

    /// <summary>What a sweep by another worker on the same cgroup base does: SIGKILL to every process in every cgroup under it.</summary>
    private static HashSet<int> Sweep(SliceNode node)
    {
        var pids = node.Launcher.Capabilities.CgroupBases
            .SelectMany(Directory.GetDirectories)
            .SelectMany(d => CgroupFiles.ReadPids(Path.Combine(d, "cgroup.procs")))
            .Where(p => p != Environment.ProcessId)
            .ToHashSet();
        foreach (var pid in pids)
        {
            Native.Kill(pid, Native.SigKill);
        }
        return pids;
    }

    /// <summary>Gone, or a zombie its parent has not reaped yet.</summary>
    private static bool Dead(int pid) => State(pid) is 'Z' or null;

    /// <summary>The state letter in <c>/proc/{pid}/status</c> (<c>S</c>, <c>T</c>, <c>Z</c>, …); null when the process is gone.</summary>
    private static char? State(int pid)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("State:", StringComparison.Ordinal))["State:".Length..].Trim()[0];
        }
        catch (IOException)
        {
            return null;
        }
    }

    [Fact]
    public async Task A_declared_path_inside_what_the_sandbox_builds_fails_clearly()
    {
        await using var node = await SliceNode.StartAsync(Token);

        var (etc, _) = await node.RunAsync(SliceNode.Shell("echo ran") with { ReadOnlyPaths = ["/etc/ssl"] }, Token);
        var (tmp, _) = await node.RunAsync(SliceNode.Shell("echo ran") with { ReadWritePaths = ["/tmp"] }, Token);

        Assert.Null(etc.ExitCode);
        Assert.Contains("'/etc/ssl' is inside /etc", etc.SetupError, StringComparison.Ordinal);
        Assert.Null(tmp.ExitCode);
        Assert.Contains("slice's own /tmp", tmp.SetupError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_holding_a_nul_cannot_become_sandbox_options()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = node.Dir.File("reached");
        // Split at the NUL, the value would bind the host's root writable into the slice.
        var request = SliceNode.Shell($"touch /host{marker}; echo ran") with
        {
            Environment = new Dictionary<string, string> { ["MODE"] = "x\0--bind\0/\0/host" },
        };

        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.Empty(stdout);
        Assert.Null(exit.ExitCode);
        Assert.Contains("NUL", exit.SetupError, StringComparison.Ordinal);
        Assert.False(File.Exists(marker));
    }

    private static bool IsWaitingDirectory(string path) => Path.GetFileName(path).StartsWith("w-", StringComparison.Ordinal);

    /// <summary>Every process whose command line holds <paramref name="text"/>, waiting sandboxes included.</summary>
    private static List<int> CommandLinesWith(string text)
    {
        var found = new List<int>();
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var pid) && pid != Environment.ProcessId)
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(directory, "cmdline")).Contains(text, StringComparison.Ordinal))
                    {
                        found.Add(pid);
                    }
                }
                catch (IOException)
                {
                    // gone meanwhile
                }
            }
        }
        return found;
    }
}
