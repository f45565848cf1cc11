using System.Net;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>
/// The runner compiled ahead of time (NativeAOT), as an operator would run it: it takes its partitions, runs a saga
/// and its effect end to end, and answers every endpoint as the build on the JIT does, with nothing it would have
/// needed reflection for. (The demo, the main job, runs on it too: <see cref="DemoTests"/>.)
/// </summary>
public sealed class NativeRunnerTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task The_native_runner_runs_a_saga_and_its_effect_and_answers_every_endpoint()
    {
        var executable = await NativeRunner.PathAsync();
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js, stub) = (scope.Token, scope.Js, scope.Stub);
        stub.Respond("/work", (_, _) => new StubResponse(200, """{"ok":true}"""));
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct, executable: executable);

        var (status, info, text) = await node.GetAsync("info", ct);
        Assert.True(status == HttpStatusCode.OK, text);
        var runtime = info!["runtime"]!;
        Assert.True(runtime["native_aot"]!.GetValue<bool>(), text);
        Assert.True(runtime["precompiled"]!.GetValue<bool>(), text);
        Assert.True(runtime["gc"]!["server"]!.GetValue<bool>(), text);
        Assert.Equal("op", info["manifest"]!["sagas"]![0]!["name"]!.GetValue<string>());
        Assert.Equal("work.do", info["manifest"]!["effects"]![0]!["name"]!.GetValue<string>());
        Assert.Equal(4, info["owned_partitions"]!.AsArray().Count);
        Assert.Contains("code compiled ahead of time (NativeAOT)", node.Process.Output, StringComparison.Ordinal);
        // The store is the LMDB this repository compiles, not a copy a package may bring along.
        var maps = await File.ReadAllTextAsync($"/proc/{node.Process.Id}/maps", ct);
        Assert.Contains("librunner-lmdb.so", maps, StringComparison.Ordinal);

        await RunnerNode.PublishCreatedAsync(js, "n1", 7, ct);
        await node.WaitUntilAsync(async () =>
        {
            var (found, show, _) = await node.GetAsync("admin/instances/op/n1", ct, RunnerNode.Token);
            return found == HttpStatusCode.OK && show!["state"]!["status"]!.GetValue<string>() == "done";
        }, "instance n1 done", ct);
        var request = Assert.Single(stub.Requests);
        Assert.Contains("\"n\":7", request.Body, StringComparison.Ordinal);

        var (healthStatus, health, healthText) = await node.GetAsync("health", ct);
        Assert.True(healthStatus == HttpStatusCode.OK, healthText);
        Assert.Equal("healthy", health!["status"]!.GetValue<string>());
        Assert.True(health["checks"]!.AsObject().Count > 0, healthText);
        var ready = await node.GetAsync("ready", ct);
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        Assert.True(ready.Body!["ready"]!.GetValue<bool>(), ready.Text);
        Assert.Contains("runner_saga_transitions_total", (await node.GetAsync("metrics", ct)).Text, StringComparison.Ordinal);

        var list = await node.GetAsync("admin/instances?saga=op&status=done", ct, RunnerNode.Token);
        Assert.True(list.Status == HttpStatusCode.OK, list.Text);
        Assert.Equal("n1", Assert.Single(list.Body!["instances"]!.AsArray())!["key"]!.GetValue<string>());
        Assert.Equal(4, list.Body["partitions_answered"]!.GetValue<int>());
        var partitions = await node.GetAsync("admin/partitions", ct, RunnerNode.Token);
        Assert.True(partitions.Status == HttpStatusCode.OK, partitions.Text);
        Assert.Equal(4, partitions.Body!["partitions"]!.AsArray().Count);
        var throughput = await node.GetAsync("admin/throughput", ct, RunnerNode.Token);
        Assert.True(throughput.Status == HttpStatusCode.OK, throughput.Text);
        Assert.Equal(2, throughput.Body!["transitions"]!.GetValue<long>());
        var quarantine = await node.GetAsync("admin/quarantine", ct, RunnerNode.Token);
        Assert.True(quarantine.Status == HttpStatusCode.OK, quarantine.Text);
        Assert.Empty(quarantine.Body!["entries"]!.AsArray());
        var refused = await node.GetAsync("admin/instances", ct);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal("a valid bearer token is required", refused.Body!["error"]!.GetValue<string>());
        var page = await node.GetAsync("admin/ui/", ct);
        Assert.True(page.Status == HttpStatusCode.OK, page.Text);

        // The image's health check, as its HEALTHCHECK and the stack files run it: the native runner asks its own endpoint.
        using (var probe = RunnerProcess.Start(["health"], new Dictionary<string, string>
        {
            ["DOTNET_gcServer"] = "0",
            ["RUNNER_HTTP_URLS"] = node.Environment["RUNNER_HTTP_URLS"],
        }, executable))
        {
            Assert.True(await probe.WaitForExitAsync(ct) == 0, probe.Output);
        }

        var drain = await node.PostAsync("admin/drain", ct);
        Assert.True(drain.Status is HttpStatusCode.OK or HttpStatusCode.Accepted, drain.Text);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await node.GetAsync("ready", ct)).Status);
        Assert.Equal(0, await node.TerminateAsync(ct));
    }

    [Fact]
    public async Task The_native_runner_takes_its_GC_settings_from_the_environment_as_the_JIT_build_does()
    {
        var executable = await NativeRunner.PathAsync();
        await using var scope = await OpsScope.StartAsync(nats);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, scope.Token, executable: executable,
            configure: environment => environment["DOTNET_gcServer"] = "0");

        var (status, info, text) = await node.GetAsync("info", scope.Token);
        Assert.True(status == HttpStatusCode.OK, text);
        Assert.False(info!["runtime"]!["gc"]!["server"]!.GetValue<bool>(), text);
        Assert.Equal(0, info["runtime"]!["gc"]!["dynamic_adaptation"]!.GetValue<long>());
        Assert.Contains("workstation GC, 1 heap(s), DATAS off, code compiled ahead of time (NativeAOT)", node.Process.Output, StringComparison.Ordinal);
    }
}
