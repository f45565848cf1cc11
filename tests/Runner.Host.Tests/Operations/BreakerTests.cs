using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>An open circuit breaker, as an operator sees it on the real binary: its state and the commands it holds back.</summary>
public sealed class BreakerTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Metrics_and_info_show_an_open_breaker_and_the_commands_it_holds()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js, stub) = (scope.Token, scope.Js, scope.Stub);
        stub.Respond("/work", (_, _) => new StubResponse(503, """{"error":"down"}"""));
        // One attempt per command and a breaker that opens on two failures and stays open a minute.
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct, extraManifests: new Dictionary<string, string>
        {
            ["effects.yaml"] = $$"""
                kind: effect
                name: work.do
                provider: http
                http: { url: "{{stub.Url}}work" }
                retry: { max_attempts: 1 }
                circuit_breaker: { minimum_throughput: 2, break_ms: 60000 }
                """,
        });
        const string Effect = "effect=\"work.do\"";
        var metrics = string.Empty;
        async Task<bool> MetricIsAsync(string name, double value)
        {
            metrics = (await node.GetAsync("metrics", ct)).Text;
            return MetricsTests.Samples(metrics, name, Effect) is [var line] && line.EndsWith(FormattableString.Invariant($" {value}"), StringComparison.Ordinal);
        }

        await RunnerNode.PublishCreatedAsync(js, "b1", 1, ct);
        await RunnerNode.PublishCreatedAsync(js, "b2", 2, ct);
        await node.WaitUntilAsync(() => MetricIsAsync("runner_breaker_state", 2), "the breaker open in /metrics", ct);
        await RunnerNode.PublishCreatedAsync(js, "b3", 3, ct);
        await node.WaitUntilAsync(() => MetricIsAsync("runner_effect_held", 1), "one command held in /metrics", ct);

        Assert.Equal(2, MetricsTests.Value(metrics, "runner_breaker_state", Effect, $"upstream=\"{stub.Url.GetLeftPart(UriPartial.Authority)}\""));
        var breaker = Assert.Single((await node.GetAsync("info", ct)).Body!["breakers"]!.AsArray())!;
        Assert.Equal("work.do", breaker["effect"]!.GetValue<string>());
        Assert.Equal(stub.Url.GetLeftPart(UriPartial.Authority), breaker["upstream"]!.GetValue<string>());
        Assert.Equal("open", breaker["state"]!.GetValue<string>());
        Assert.Equal(1, breaker["held"]!.GetValue<int>());
        Assert.Equal(1, breaker["opened"]!.GetValue<long>());
        // The held command called nothing: the two calls are those that opened the breaker.
        Assert.Equal(2, stub.Requests.Count);
    }
}
