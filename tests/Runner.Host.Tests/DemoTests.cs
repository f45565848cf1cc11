using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

/// <summary>The README's main job, as a newcomer runs it: every sample order ends the way the sample says.</summary>
public sealed class DemoTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Demo_runs_every_sample_order_to_its_end_through_real_effect_workers()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var dir = new TempDirectory("runner-demo-test");
        var manifests = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "manifests"));
        using var runner = RunnerProcess.Start(["demo"], new Dictionary<string, string>
        {
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_MANIFESTS"] = manifests,
            ["RUNNER_DATA_DIR"] = dir.File("data"),
        });

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
    }
}
