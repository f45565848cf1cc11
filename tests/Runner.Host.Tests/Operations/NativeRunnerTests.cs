using System.Net;
using NATS.Client.JetStream;
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

/// <summary>
/// Hostile scripts meet the same sandbox on the native runner as on the JIT build: each breaks its limit, its instance is
/// parked with the limit as the reason, and an instance beside them completes.
/// </summary>
public sealed class NativeSandboxTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const string HostileManifest = """
        kind: saga
        name: hostile
        script: hostile.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.hostile.*.added", correlation: "subject[3]" }
        """;

    private const string HostileScript = """
        'use strict';
        function deeper(n) { return deeper(n + 1) + 1; }
        function on_event(state, event, ctx) {
          var kind = event.data.kind;
          if (kind === 'loop') { while (true) {} }
          if (kind === 'memory') { var a = []; while (true) { a.push(new Array(100000).fill(a.length)); } }
          if (kind === 'recursion') { return { state: { depth: deeper(0) } }; }
          if (kind === 'throw') { throw new Error('refused'); }
          return { state: { status: 'done' }, done: true };
        }
        """;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Each_hostile_script_parks_its_instance_with_its_limit_and_the_others_go_on(bool native)
    {
        var executable = native ? await NativeRunner.PathAsync() : RunnerProcess.Jit;
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct, executable: executable,
            extraManifests: new Dictionary<string, string> { ["hostile.yaml"] = HostileManifest, ["hostile.js"] = HostileScript });
        var expected = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["loop"] = ["script_timeout", "script_statement_limit"],
            ["memory"] = ["script_memory_limit"],
            ["recursion"] = ["script_recursion_limit"],
            ["throw"] = ["script_error"],
        };
        foreach (var kind in expected.Keys.Append("fine"))
        {
            var evt = new System.Text.Json.Nodes.JsonObject
            {
                ["specversion"] = "1.0", ["id"] = $"h-{kind}", ["source"] = "ops-test", ["type"] = "added",
                ["data"] = new System.Text.Json.Nodes.JsonObject { ["kind"] = kind },
            };
            (await scope.Js.PublishAsync($"aggregate.acme.hostile.{kind}.added", System.Text.Encoding.UTF8.GetBytes(evt.ToJsonString()), cancellationToken: ct)).EnsureSuccess();
        }

        await node.WaitUntilAsync(async () =>
        {
            var (found, show, _) = await node.GetAsync("admin/instances/hostile/fine", ct, RunnerNode.Token);
            return found == HttpStatusCode.OK && show!["state"]!["status"]?.GetValue<string>() == "done";
        }, "the fine instance done", ct);
        foreach (var (kind, reasons) in expected)
        {
            System.Text.Json.Nodes.JsonNode? shown = null;
            await node.WaitUntilAsync(async () =>
            {
                shown = (await node.GetAsync($"admin/instances/hostile/{kind}", ct, RunnerNode.Token)).Body;
                return shown?["summary"]?["status"]?.GetValue<string>() == "parked";
            }, $"{kind} parked", ct);
            var reason = shown!["parked"]!["reason"]!.GetValue<string>();
            Assert.True(reasons.Contains(reason, StringComparer.Ordinal), $"{kind}: parked for {reason}: {shown}");
        }
        Assert.False(node.Process.HasExited, node.Tail());
    }
}
