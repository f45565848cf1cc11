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
    public async Task Another_program_starts_its_own_sandbox_and_no_waiting_sandbox_outlives_the_launcher()
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
            // The sandbox for the first program was discarded; one for the second waits.
            Assert.Empty(CommandLinesWith($"{marker}-one"));
            Assert.Single(CommandLinesWith($"{marker}-two"));

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
