using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

/// <summary>The README's main job, as a newcomer runs it: every sample order ends the way the sample says.</summary>
public sealed class DemoTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public Task Demo_runs_every_sample_order_to_its_end_and_a_pipeline_of_sandboxed_slices_with_a_retry() => RunAsync(nats, RunnerProcess.Jit);

    /// <summary>
    /// The demo on <paramref name="nats"/> (a server of its own: the demo's streams and sample events are its alone),
    /// by the build's runner on the JIT (<see cref="RunnerProcess.Jit"/>) or by the native one at <paramref name="executable"/>.
    /// </summary>
    internal static async Task RunAsync(NatsServerFixture nats, string executable)
    {
        var sliceBinary = await SliceBinary.PathAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        using var dir = new TempDirectory("runner-demo-test");
        var manifests = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "manifests"));
        using var runner = RunnerProcess.Start(["demo"], new Dictionary<string, string>
        {
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_MANIFESTS"] = manifests,
            ["RUNNER_DATA_DIR"] = dir.File("data"),
            ["RUNNER_SLICE_BIN"] = sliceBinary,
            ["PIPELINE_ROOT"] = dir.File("pipelines"),
        }, executable);

        var exit = await runner.WaitForExitAsync(cts.Token);

        var output = runner.Output;
        Assert.True(exit == 0, output);
        Assert.Contains("all 4 sample saga instances finished", output, StringComparison.Ordinal);
        Assert.Equal(2, output.Split('\n').Count(l => l.TrimEnd().EndsWith(": completed", StringComparison.Ordinal)));
        Assert.Contains(": cancelled (payment deadline passed)", output, StringComparison.Ordinal);
        Assert.Contains(": cancelled (payment.charge: http_402)", output, StringComparison.Ordinal);
        Assert.Contains("POST /payments/charges tenant=acme", output, StringComparison.Ordinal);
        Assert.Contains("-> 503 ServiceUnavailable", output, StringComparison.Ordinal);
        Assert.Contains("POST /gateway/commands tenant=globex", output, StringComparison.Ordinal);
        Assert.Contains("1 message(s) quarantined", output, StringComparison.Ordinal);
        Assert.Contains(": not_json", output, StringComparison.Ordinal);

        // The pipeline: four partitions, each a slice in its own sandbox; p3's input arrives late, so
        // its first slice fails and the saga's retry succeeds; the outcome is announced with totals.
        Assert.Contains("workflow.evt.acme.slice.launch.failed: slice_failed", output, StringComparison.Ordinal);
        Assert.Contains("announce pipeline.acme.orders-daily.run.completed", output, StringComparison.Ordinal);
        Assert.Contains("totals: 100,000 records in", output, StringComparison.Ordinal);
        var partitions = output.Split('\n').Where(l => l.TrimStart().StartsWith('p') && l.Contains(": succeeded after", StringComparison.Ordinal)).ToList();
        Assert.True(partitions.Count == 4, output);
        // p0–p2 succeed at once. p3 fails until its input is in place: the demo moves it there when
        // it reads the first failure, and the saga retries 2 s after that failure, so a demo process
        // slower than that to react (a loaded machine) sees p3 fail once more before it succeeds.
        Assert.True(partitions.Count(p => p.Contains(": succeeded after 1 attempt(s)", StringComparison.Ordinal)) == 3, output);
        var p3 = System.Text.RegularExpressions.Regex.Match(output, @"p3: succeeded after ([0-9]+) attempt\(s\)");
        Assert.True(p3.Success, output);
        var p3Attempts = int.Parse(p3.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(p3Attempts, 2, 3);
        Assert.True(output.Contains($"{3 + p3Attempts} slice launches", StringComparison.Ordinal), output);
        long written = 0;
        foreach (var line in partitions)
        {
            var path = line[(line.IndexOf('→', StringComparison.Ordinal) + 1)..].Trim();
            Assert.StartsWith(dir.File("pipelines"), path, StringComparison.Ordinal);
            written += File.ReadLines(path).LongCount();
        }
        var outCount = long.Parse(System.Text.RegularExpressions.Regex.Match(output, @"records in, ([0-9,]+) out").Groups[1].Value.Replace(",", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(outCount, written);
    }
}

/// <summary>The main job on the runner compiled ahead of time (NativeAOT): the same demo, end to end, on a server of its own.</summary>
public sealed class NativeDemoTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task The_native_runner_runs_the_demo_to_the_same_end() => await DemoTests.RunAsync(nats, await NativeRunner.PathAsync());
}
