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
    public async Task A_sandbox_started_ahead_gets_each_slice_its_own_environment_files_paths_and_limits()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var a = Directory.CreateDirectory(node.Dir.File("a")).FullName;
        var b = Directory.CreateDirectory(node.Dir.File("b")).FullName;
        await File.WriteAllTextAsync(Path.Combine(a, "x.txt"), "in-a", Token);
        await File.WriteAllTextAsync(Path.Combine(b, "x.txt"), "in-b", Token);
        // One program for all three slices: what differs comes through the per-slice arguments.
        const string script = """
            echo "who=$WHO"
            echo "spec=$(cat /run/slice/spec.txt)"
            echo "secret=$(cat /run/secrets/token)"
            echo "mine=$(cat "$MINE/x.txt")"
            if [ -e "$OTHER/x.txt" ]; then echo other=visible; else echo other=hidden; fi
            head -c "$ALLOC" /dev/zero | tail > /dev/null
            echo status=$?
            """;
        SandboxRequest Slice(string who, string mine, string other, long memory, long alloc) => SliceNode.Shell(script, new CgroupLimits(1, memory, 64)) with
        {
            Environment = new Dictionary<string, string> { ["WHO"] = who, ["MINE"] = mine, ["OTHER"] = other, ["ALLOC"] = alloc.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            Files = new Dictionary<string, byte[]> { ["spec.txt"] = System.Text.Encoding.UTF8.GetBytes("spec-" + who) },
            Secrets = new Dictionary<string, byte[]> { ["token"] = System.Text.Encoding.UTF8.GetBytes("token-" + who) },
            ReadOnlyPaths = [mine],
        };

        var (first, firstOut) = await node.RunAsync(Slice("one", a, b, 512L * 1024 * 1024, 150_000_000), Token);
        var hitsBefore = node.Launcher.SpareHits;
        // Down to 64 MiB in a sandbox made for 512 MiB, then up again: each slice gets its own limit.
        var (second, secondOut) = await node.RunAsync(Slice("two", b, a, 64L * 1024 * 1024, 1_000_000_000), Token);
        var (third, thirdOut) = await node.RunAsync(Slice("three", a, b, 512L * 1024 * 1024, 150_000_000), Token);

        Assert.Equal(2, node.Launcher.SpareHits - hitsBefore);
        Assert.Equal(["who=one", "spec=spec-one", "secret=token-one", "mine=in-a", "other=hidden", "status=0"], firstOut);
        Assert.Equal(["who=two", "spec=spec-two", "secret=token-two", "mine=in-b", "other=hidden", "status=137"], secondOut);
        Assert.Equal(["who=three", "spec=spec-three", "secret=token-three", "mine=in-a", "other=hidden", "status=0"], thirdOut);
        Assert.False(first.OomKilled);
        Assert.True(second.OomKilled, "the second slice's 64 MiB limit was written to the cgroup its sandbox waited in");
        Assert.InRange(second.PeakMemoryBytes!.Value, 32L * 1024 * 1024, 64L * 1024 * 1024);
        Assert.False(third.OomKilled, "the third slice's 512 MiB limit replaced the 64 MiB one");
        Assert.All(new[] { first, second, third }, e => Assert.Null(e.SetupError));
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
            await SagaHarness.WaitUntilAsync(() => Task.FromResult(CommandLinesWith($"{marker}-one").Count == 1 && CommandLinesWith($"{marker}-two").Count == 1),
                TimeSpan.FromSeconds(10), "a sandbox waits for each program");
            Assert.All(CommandLinesWith(marker), p => Assert.True(LimitTests.IsWaitingSandbox(p), $"{p} waits for its slice"));
            // A third program makes room: the sandbox of the least recent one is discarded.
            var (third, _) = await node.RunAsync(SliceNode.Shell($"echo {marker}-three"), Token);
            Assert.Equal(0, third.ExitCode);
            await SagaHarness.WaitUntilAsync(() => Task.FromResult(CommandLinesWith($"{marker}-one").Count == 0 && CommandLinesWith($"{marker}-three").Count == 1),
                TimeSpan.FromSeconds(10), "the least recent program's sandbox is gone");

            await node.Launcher.DisposeAsync();
            Assert.Empty(CommandLinesWith(marker));
        }
    }

    [Fact]
    public async Task A_waiting_sandbox_whose_stdin_ends_without_its_arguments_runs_nothing()
    {
        Assert.True(OperatingSystem.IsLinux());
        using var dir = new TempDirectory("runner-spare");
        var options = SliceNode.Options(dir) with { Bwrap = "/usr/bin/bwrap", Setpriv = "/usr/bin/setpriv" };
        var view = SystemView.Create(options.SystemPaths, options.RunDirectory);
        var request = SliceNode.Shell("echo ran");
        var host = Directory.CreateDirectory(dir.File("host")).FullName;
        Directory.CreateDirectory(Path.Combine(host, "slice"));
        Directory.CreateDirectory(Path.Combine(host, "secrets"));
        SliceDirectories.GiveTo(host, options.Uid, options.Gid);
        var argv = SandboxCommand.Build(options, view, request, perSlice: null, hostDirectory: null, procsFiles: [], setpriv: true);
        Assert.Contains("--args", argv);

        // As a worker that dies: stdin closes with nothing written.
        var (abandonedExit, abandonedOut, abandonedErr) = await RunAsync(argv, null);
        // And as a launch: the per-slice arguments in one write.
        var (handedExit, handedOut, _) = await RunAsync(argv, SandboxCommand.Encode(SandboxCommand.PerSlice(request, host)));

        Assert.Equal(1, abandonedExit);
        Assert.Empty(abandonedOut);
        Assert.Contains("bwrap: Can't chmod", abandonedErr, StringComparison.Ordinal);
        Assert.Equal(0, handedExit);
        Assert.Equal("ran\n", handedOut);
        view.Remove();
    }

    [Fact]
    public async Task Network_modes_of_one_program_each_keep_a_sandbox_waiting()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var request = SliceNode.Shell("ls /sys/class/net 2>/dev/null | wc -l; cat /proc/net/dev | tail -n +3 | wc -l");
        var hits = node.Launcher.SpareHits;
        var outputs = new List<string>();
        foreach (var network in new[] { SliceNetwork.None, SliceNetwork.Host, SliceNetwork.None, SliceNetwork.Host, SliceNetwork.None })
        {
            var (exit, stdout) = await node.RunAsync(request with { Network = network }, Token);
            Assert.Equal(0, exit.ExitCode);
            outputs.Add(stdout[^1]);
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
    public async Task Arguments_over_one_atomic_write_go_on_the_command_line()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var big = new string('x', 3000);
        var request = SliceNode.Shell("echo ${#A}:${#B}") with { Environment = new Dictionary<string, string> { ["A"] = big, ["B"] = big } };
        var hits = node.Launcher.SpareHits;

        var (first, firstOut) = await node.RunAsync(request, Token);
        var (second, secondOut) = await node.RunAsync(request, Token);

        Assert.Equal(["3000:3000"], firstOut);
        Assert.Equal(["3000:3000"], secondOut);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(hits, node.Launcher.SpareHits);
        Assert.Null(first.SetupError);
    }

    [Fact]
    public async Task A_waiting_sandbox_that_died_is_replaced_by_one_started_on_the_spot()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = LimitTests.Marker();
        var request = SliceNode.Shell($"echo {marker}");
        Assert.Equal(0, (await node.RunAsync(request, Token)).Exit.ExitCode);
        var waiting = 0;
        await SagaHarness.WaitUntilAsync(() =>
        {
            waiting = CommandLinesWith(marker).FirstOrDefault(LimitTests.IsWaitingSandbox);
            return Task.FromResult(waiting != 0);
        }, TimeSpan.FromSeconds(10), "a sandbox waits");
        var hits = node.Launcher.SpareHits;

        Native.Kill(waiting, Native.SigKill);
        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Null(exit.SetupError);
        Assert.Equal([marker], stdout);
        Assert.False(Directory.Exists($"/proc/{waiting}"));
        Assert.True(node.Launcher.SpareHits - hits <= 1);
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

    private async Task<(int Exit, string Stdout, string Stderr)> RunAsync(List<string> argv, byte[]? arguments)
    {
        var start = new ProcessStartInfo(argv[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var arg in argv.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }
        // From the launcher thread: bubblewrap's parent-death signal follows the thread that forked it.
        using var process = await LauncherThread.StartAsync(start);
        if (arguments is not null)
        {
            await process.StandardInput.BaseStream.WriteAsync(arguments, Token);
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(Token);
        var stderr = process.StandardError.ReadToEndAsync(Token);
        await process.WaitForExitAsync(Token);
        return (process.ExitCode, await stdout, await stderr);
    }

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
