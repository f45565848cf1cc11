using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

public sealed class CommandLineTests
{
    [Fact]
    public async Task Validate_accepts_the_shipped_manifests()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var manifests = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "manifests"));
        using var runner = RunnerProcess.Start(["validate", manifests], new Dictionary<string, string>());
        Assert.Equal(0, await runner.WaitForExitAsync(cts.Token));
        Assert.Contains("saga order-fulfillment", runner.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_prints_every_error_with_file_and_line_and_fails()
    {
        using var dir = new TempDirectory();
        await File.WriteAllTextAsync(dir.File("a.yaml"), """
            kind: saga
            name: broken
            script: missing.js
            colour: blue
            triggers:
              - stream: AGGREGATE_EVENTS
                subject: "aggregate..bad"
                correlation: "subject[x]"
            """);
        await File.WriteAllTextAsync(dir.File("b.yaml"), """
            kind: saga
            name: nohandler
            script: nohandler.js
            triggers:
              - { stream: NOT_A_STREAM, subject: "aggregate.>", correlation: "$.data.id" }
            """);
        await File.WriteAllTextAsync(dir.File("nohandler.js"), "function other() { return 1; }\n");
        await File.WriteAllTextAsync(dir.File("c.yaml"), "kind: saga\nname: broken\nscript: x.js\ntriggers: [ { stream: AGGREGATE_EVENTS, subject: \"a.b\", correlation: \"subject[1]\" } ]\n");
        await File.WriteAllTextAsync(dir.File("x.js"), "function on_event(s, e, c) { return { state: s }\n");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var runner = RunnerProcess.Start(["validate", dir.Path], new Dictionary<string, string>());
        Assert.Equal(1, await runner.WaitForExitAsync(cts.Token));
        var output = runner.Output;
        Assert.Contains("a.yaml:4:1: saga: unknown field 'colour'", output, StringComparison.Ordinal);
        Assert.Contains("a.yaml:7:", output, StringComparison.Ordinal);
        Assert.Contains("empty token", output, StringComparison.Ordinal);
        Assert.Contains("a.yaml:8:", output, StringComparison.Ordinal);
        Assert.Contains("b.yaml:5:", output, StringComparison.Ordinal);
        Assert.Contains("NOT_A_STREAM", output, StringComparison.Ordinal);
        Assert.Contains("does not define function on_event", output, StringComparison.Ordinal);
        Assert.Contains("c.yaml:1:1: duplicate saga name 'broken'", output, StringComparison.Ordinal);
        Assert.Contains("x.js:2:", output, StringComparison.Ordinal);
        Assert.Contains("script does not compile", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_refuses_to_start_on_bad_settings_and_lists_them()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var runner = RunnerProcess.Start(["serve"], new Dictionary<string, string> { ["RUNNER_PARTITIONS"] = "0", ["RUNNER_MODE"] = "x" });
        Assert.Equal(2, await runner.WaitForExitAsync(cts.Token));
        Assert.Contains("2 configuration problem(s)", runner.Output, StringComparison.Ordinal);
    }
}
