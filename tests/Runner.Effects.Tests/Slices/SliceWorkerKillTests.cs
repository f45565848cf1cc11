using System.Globalization;
using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Slices;

/// <summary>A real runner process in effect mode, SIGKILLed while its slices run.</summary>
public sealed class SliceWorkerKillTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    /// <summary>Sleeps with a child until <c>{out}/release</c> exists (a <c>warm-*</c> run at once); then reports its run and exits.</summary>
    private const string Script = """
        #!/bin/sh
        spec="$2"
        run=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$spec")
        out=$(sed -n 's/.*"out":"\([^"]*\)".*/\1/p' "$spec")
        echo "$run" >> "$out/launches"
        if [ -e "$out/release" ] || [ "${run#warm-}" != "$run" ]; then
          echo "{\"kind\":\"result\",\"result\":{\"run\":\"$run\"}}"
          exit 0
        fi
        sleep MARKER &
        exec sleep MARKER
        """;

    [Fact]
    public async Task A_SIGKILLed_worker_leaves_no_slice_behind_and_the_next_start_completes_its_commands()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);

        using var dir = new TempDirectory("runner-slice-kill");
        var marker = "4" + Random.Shared.Next(1_000_000, 9_999_999).ToString(CultureInfo.InvariantCulture);
        var binary = dir.File("runner-slice");
        await File.WriteAllTextAsync(binary, Script.Replace("MARKER", marker, StringComparison.Ordinal) + "\n", cts.Token);
        var output = Directory.CreateDirectory(dir.File("out")).FullName;
        var manifests = Directory.CreateDirectory(dir.File("manifests")).FullName;
        if (OperatingSystem.IsLinux())
        {
            File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ED);  // 0755: the slice uid reaches the script
            File.SetUnixFileMode(binary, (UnixFileMode)0x1ED);
            File.SetUnixFileMode(output, (UnixFileMode)0x1FF);    // 0777: and writes its launches
        }
        await File.WriteAllTextAsync(Path.Combine(manifests, "effects.yaml"), $$"""
            kind: effect
            name: slice.launch
            provider: slice
            slice:
              paths: { rw: [{{output}}] }
            defaults: { cpu: 0.5, memory: 67108864, pids: 32, timeout_ms: 120000, network: none }
            maximums: { cpu: 1, memory: 268435456, pids: 128, timeout_ms: 120000, network: none }
            concurrency: 4
            """, cts.Token);
        var cgroupBase = "runner-test-" + Guid.NewGuid().ToString("N")[..10];
        Dictionary<string, string> Environment(string worker) => new()
        {
            ["RUNNER_MODE"] = "effect",
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_MANIFESTS"] = manifests,
            ["RUNNER_DATA_DIR"] = dir.File("data-" + worker),
            ["RUNNER_WORKER_ID"] = worker,
            // Short enough for a quick take-over, long enough that a worker starting cold on a busy
            // machine renews in time: a lease lost mid-run launches the slice once more, and the
            // launch count below says each command ran once per worker.
            ["RUNNER_EFFECT_LEASE"] = "5s",
            ["RUNNER_ACK_WAIT"] = "5s",
            ["RUNNER_SLICE_BIN"] = binary,
            ["RUNNER_SLICE_CGROUP"] = cgroupBase,
            ["RUNNER_SLICE_RUN_DIR"] = dir.File("run"),
            ["RUNNER_SLICE_CPU"] = "2",
            ["RUNNER_SLICE_MEMORY"] = "1GiB",
        };
        var cgroupBases = Directory.GetDirectories("/sys/fs/cgroup").Select(d => Path.Combine(d, cgroupBase)).ToList();
        Exception? failure = null;
        RunnerProcess? first = null;
        RunnerProcess? second = null;
        try
        {
            List<string> oldCgroups;
            using (first = RunnerProcess.Start(["serve"], Environment("process-a")))
            {
                foreach (var id in new[] { "kill-1", "kill-2" })
                {
                    await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "slice.launch", id, Payload(id, output)), cancellationToken: cts.Token);
                }
                // Both slices run: each a sleeping script and its sleeping child, in a cgroup of its own.
                await WaitAsync(() => Task.FromResult(Sleepers(marker).Count >= 4 && Occupied(cgroupBases).Select(Path.GetFileName).Distinct().Count() >= 2),
                    TimeSpan.FromSeconds(60), "both slices and their children run", first);
                // A slice that ends at once leaves a sandbox built ahead for the next one, waiting in a cgroup of its own.
                await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "slice.launch", "warm-1", Payload("warm-1", output)), cancellationToken: cts.Token);
                await WaitAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 1
                        && Occupied(cgroupBases).Select(Path.GetFileName).Distinct().Count() >= 3,
                    TimeSpan.FromSeconds(60), "a slice ended and a sandbox waits for the next", first);
                oldCgroups = Occupied(cgroupBases);

                await first.KillAloneAsync(cts.Token);
            }

            // bubblewrap's parent-death signal: nothing of the slices outlives their worker, and the
            // sandbox built ahead finds its trigger closed and exits without running anything.
            await SagaHarness.WaitUntilAsync(() => Task.FromResult(Sleepers(marker).Count == 0 && Occupied(cgroupBases).Count == 0),
                TimeSpan.FromSeconds(10), "the slices and the waiting sandbox die with their worker");

            await File.WriteAllTextAsync(Path.Combine(output, "release"), "go", cts.Token);
            using var running = second = RunnerProcess.Start(["serve"], Environment("process-b"));
            await WaitAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 3,
                TimeSpan.FromSeconds(90), "both commands taken over and completed", second);

            var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
            Assert.Equal(3, results.Count);
            Assert.All(results, r => Assert.Equal("workflow.evt.acme.slice.launch.succeeded", r.Subject));
            Assert.Equal(["kill-1", "kill-2", "warm-1"], results.Select(r => r.Body["data"]!["result"]!["output"]!["run"]!.GetValue<string>()).Order());
            // Each kill-* once per worker, warm-1 once: the waiting sandbox never ran anything.
            Assert.Equal(["kill-1", "kill-1", "kill-2", "kill-2", "warm-1"], File.ReadAllLines(Path.Combine(output, "launches")).Order());
            Assert.Empty(Sleepers(marker));
            // The start-up sweep removed the old worker's cgroups before the new one took commands.
            Assert.All(oldCgroups, c => Assert.False(Directory.Exists(c), c + " outlived its worker"));
            // A worker that stops on SIGTERM removes what it made ahead: the empty cgroups and the
            // sandbox waiting for the next slice in its own.
            Assert.Contains(cgroupBases.Where(Directory.Exists), b => Directory.GetDirectories(b).Length > 0);
            await second.TerminateAsync(cts.Token);
            Assert.Equal(0, await second.WaitForExitAsync(cts.Token));
            Assert.All(cgroupBases.Where(Directory.Exists), b => Assert.Empty(Directory.GetDirectories(b)));
        }
        catch (Exception ex)
        {
            // What the runners logged (leases, launches, sweeps) is what tells a failure's cause.
            failure = ex;
            throw new Xunit.Sdk.XunitException(
                $"{ex.Message}\n--- first runner:\n{first?.Output}\n--- second runner:\n{second?.Output}", ex);
        }
        finally
        {
            try
            {
                // The workers' own start-up sweep: kills what is left in any slice cgroup of the base, then removes them.
                var problems = new List<string>();
                if (Runner.Slices.Cgroups.CgroupDetector.Detect(cgroupBase, TimeProvider.System, problems) is { } tree)
                {
                    await tree.RemoveLeftoversAsync(CancellationToken.None);
                }
                foreach (var directory in cgroupBases.Where(Directory.Exists))
                {
                    await Runner.Slices.Cgroups.CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, CancellationToken.None);
                }
            }
            catch (Exception ex) when (failure is not null && ex is IOException or UnauthorizedAccessException)
            {
                // The test's own failure is the one to report, not what it left behind.
            }
        }
    }

    /// <summary>Polls with a deadline; a runner's output says why it did not happen.</summary>
    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, RunnerProcess runner)
    {
        try
        {
            await SagaHarness.WaitUntilAsync(condition, timeout, what);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            throw new TimeoutException($"{what}: not within {timeout}; runner output:\n{runner.Output}", ex);
        }
    }

    private static object Payload(string run, string output) => new
    {
        spec = new { slice = "v1", run = new { id = run }, @out = output },
        resources = new { cpu = 0.5, memory = 64L * 1024 * 1024, pids = 32, timeout_ms = 120_000, network = "none" },
        paths = new { rw = new[] { output } },
    };

    /// <summary>Slice cgroup directories (every hierarchy) that hold a process.</summary>
    private static List<string> Occupied(IEnumerable<string> bases) =>
        bases.Where(Directory.Exists).SelectMany(Directory.GetDirectories)
            .Where(d => File.Exists(Path.Combine(d, "cgroup.procs")) && File.ReadAllText(Path.Combine(d, "cgroup.procs")).Trim().Length > 0)
            .Select(d => Path.GetFileName(d)!).Distinct(StringComparer.Ordinal)
            .SelectMany(name => bases.Select(b => Path.Combine(b, name)))
            .ToList();

    /// <summary><c>sleep MARKER</c> processes anywhere on the host.</summary>
    private static List<int> Sleepers(string marker)
    {
        var pids = new List<int>();
        foreach (var entry in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            try
            {
                var argv = File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                if (argv is [.., "sleep", var arg] && arg == marker)
                {
                    pids.Add(pid);
                }
            }
            catch (IOException)
            {
                // Gone meanwhile.
            }
        }
        return pids;
    }
}
