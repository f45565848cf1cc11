using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Slices;
using Runner.Slices.Cgroups;

namespace Runner.Bench.Launch;

/// <summary>
/// Slice launch latency, start to exit, side by side in one run: plain <c>/bin/true</c> through
/// <see cref="Process.Start()"/> (the baseline), the same through <c>unshare</c> with every
/// namespace, the launcher's full path (per-slice directory, the slice's limits on its cgroup, the
/// per-slice arguments handed to the bubblewrap sandbox waiting ahead in that cgroup as the slice
/// uid, or the sandbox started on the spot when none waits; cgroup removed after) around
/// <c>/bin/true</c>, and around NativeAOT <c>runner-slice</c>.
/// </summary>
internal static class LaunchBench
{
    private const string TinySpec = """
        slice: v1
        run: { id: bench-1, job: { namespace: bench, name: launch } }
        source: { type: jsonl, path: /tmp/in.jsonl }
        sink: { type: jsonl, path: /tmp/out.jsonl }
        """;

    public static async Task RunAsync(int launches, int gapMs, string? sliceBinary, TextWriter output, CancellationToken cancellationToken)
    {
        // Per-slice directories on a tmpfs, as the launcher's default (/dev/shm) keeps them.
        var options = new SliceLauncherOptions { RunDirectory = "/dev/shm/runner-bench-" + Environment.ProcessId, CgroupBase = "runner-bench-" + Environment.ProcessId };
        // Disposed in the finally below, before its cgroup bases are removed.
        var launcher = await SliceLauncher.StartAsync(options, NullLogger.Instance, TimeProvider.System, cancellationToken);
        output.WriteLine(Text.Inv($"slice launch latency, {launches} launches each, {gapMs} ms apart, start to exit (isolated: {launcher.Capabilities.Isolated}, cgroup {launcher.Capabilities.CgroupVersion ?? "none"})"));
        try
        {
            var baseline = await MeasureAsync(launches, gapMs, () => ProcessAsync(["/bin/true"], cancellationToken), cancellationToken);
            Report(output, "plain /bin/true (Process.Start)", baseline, baseline);
            Report(output, "unshare --user --map-root-user --pid --fork --net --mount --uts --ipc /bin/true",
                await MeasureAsync(launches, gapMs, () => ProcessAsync(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--net", "--mount", "--uts", "--ipc", "/bin/true"], cancellationToken), cancellationToken), baseline);
            var hits = launcher.SpareHits;
            Report(output, "isolated slice in its cgroup: /bin/true",
                await MeasureAsync(launches, gapMs, () => SliceAsync(launcher, ["/bin/true"], null, cancellationToken), cancellationToken), baseline);
            output.WriteLine(Text.Inv($"    (sandbox waiting ahead for {launcher.SpareHits - hits} of {launches + Math.Min(10, launches)} launches)"));
            if (sliceBinary is not null && File.Exists(sliceBinary))
            {
                var full = Path.GetFullPath(sliceBinary);
                hits = launcher.SpareHits;
                Report(output, "isolated slice in its cgroup: runner-slice validate (NativeAOT)",
                    await MeasureAsync(launches, gapMs, () => SliceAsync(launcher, [full, "validate", "/run/slice/spec.yaml"], full, cancellationToken), cancellationToken), baseline);
                output.WriteLine(Text.Inv($"    (sandbox waiting ahead for {launcher.SpareHits - hits} of {launches + Math.Min(10, launches)} launches)"));
            }
            else
            {
                output.WriteLine("  (no NativeAOT runner-slice: publish src/Runner.Slice -r linux-x64 and pass --slice-bin PATH)");
            }
        }
        finally
        {
            await launcher.DisposeAsync();
            if (Directory.Exists(options.RunDirectory))
            {
                Directory.Delete(options.RunDirectory, recursive: true);
            }
            foreach (var directory in launcher.Capabilities.CgroupBases)
            {
                CgroupFiles.RemoveTree(directory);
            }
        }
    }

    private static void Report(TextWriter output, string name, double[] sorted, double[] baseline)
    {
        var p50 = Percentile(sorted, 0.50);
        var p99 = Percentile(sorted, 0.99);
        output.WriteLine(Text.Inv($"  {name,-86} p50 {p50,7:F2} ms  p99 {p99,7:F2} ms  ({p50 / Percentile(baseline, 0.50),5:F1}x baseline p50)"));
    }

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

    private static async Task<double[]> MeasureAsync(int launches, int gapMs, Func<Task> launch, CancellationToken cancellationToken)
    {
        for (var i = 0; i < Math.Min(10, launches); i++)
        {
            await launch();
        }
        var samples = new double[launches];
        for (var i = 0; i < launches; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var start = Stopwatch.GetTimestamp();
            await launch();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (gapMs > 0)
            {
                await Task.Delay(gapMs, cancellationToken);
            }
        }
        Array.Sort(samples);
        return samples;
    }

    private static async Task ProcessAsync(string[] argv, CancellationToken cancellationToken)
    {
        using var process = Process.Start(new ProcessStartInfo(argv[0], argv[1..]) { UseShellExecute = false })!;
        await process.WaitForExitAsync(cancellationToken);
    }

    private static async Task SliceAsync(SliceLauncher launcher, string[] argv, string? binary, CancellationToken cancellationToken)
    {
        var request = new SandboxRequest
        {
            Id = "b-" + Guid.NewGuid().ToString("N")[..12],
            Argv = argv,
            Limits = new CgroupLimits(1, 256L * 1024 * 1024, 64),
            Timeout = TimeSpan.FromSeconds(30),
            Files = new Dictionary<string, byte[]> { ["spec.yaml"] = System.Text.Encoding.UTF8.GetBytes(TinySpec) },
            ReadOnlyPaths = binary is null ? [] : [binary],
        };
        var exit = await launcher.RunAsync(request, null, cancellationToken);
        if (exit.SetupError is not null || exit.ExitCode is null)
        {
            throw new InvalidOperationException($"the slice did not run: {exit.SetupError ?? "signal " + exit.Signal}");
        }
    }
}
