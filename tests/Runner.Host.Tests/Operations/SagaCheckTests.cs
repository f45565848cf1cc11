using System.Net;
using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>A new script version checked against live instances: <c>runner saga check</c> and <c>/admin/reload</c>, on a real runner.</summary>
public sealed class SagaCheckTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task A_refactor_passes_a_changed_command_is_refused_unless_declared_or_forced()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        // The work calls are held: the three instances stay live (running) through the test.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = scope.HoldWork(release.Task);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        foreach (var n in new[] { 1, 2, 3 })
        {
            await RunnerNode.PublishCreatedAsync(scope.Js, $"c{n}", n, ct);
        }
        await arrived.WaitAsync(ct);
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/instances?saga=op&status=running", ct, RunnerNode.Token)).Body?["instances"]?.AsArray().Count == 3,
            "three running instances", ct);

        var refactor = node.Dir.File("refactor");
        var changed = node.Dir.File("changed");
        foreach (var (dir, script) in new[] { (refactor, "// the same behaviour, written differently\n" + RunnerNode.Script("v1").Replace("'use strict';", "'use strict';\nconst unused = 1;", StringComparison.Ordinal)), (changed, RunnerNode.Script("v2")) })
        {
            Directory.CreateDirectory(dir);
            foreach (var file in Directory.GetFiles(node.ManifestDir))
            {
                File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
            }
            await File.WriteAllTextAsync(Path.Combine(dir, "op.js"), script, ct);
        }

        var cli = new Dictionary<string, string>(node.Environment) { ["RUNNER_DATA_DIR"] = node.Dir.File("cli-data") };
        using (var command = RunnerProcess.Start(["saga", "check", refactor, "--saga", "op"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains("ok   op: 3 of 3 live instance(s) replayed, 3 step(s), 0 diverged", command.Output, StringComparison.Ordinal);
        }
        using (var command = RunnerProcess.Start(["saga", "check", changed], cli))
        {
            Assert.Equal(1, await command.WaitForExitAsync(ct));
            Assert.Contains("DIVERGES op: 3 of 3 live instance(s) replayed, 3 step(s), 3 diverged", command.Output, StringComparison.Ordinal);
            Assert.Contains("commands[0].payload.version: expected \"v1\", got \"v2\"", command.Output, StringComparison.Ordinal);
        }

        // The same on reload: the changed script is refused with the diff, and the running version stays.
        var running = (await node.GetAsync("info", ct)).Body!["manifest"]!["version"]!.GetValue<string>();
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.js"), RunnerNode.Script("v2"), ct);
        var refused = await node.PostAsync("admin/reload", ct);
        Assert.Equal((HttpStatusCode)422, refused.Status);
        Assert.False(refused.Body!["applied"]!.GetValue<bool>());
        var diverged = refused.Body["check"]!["sagas"]![0]!["diverged"]!.AsArray();
        Assert.Equal(3, diverged.Count);
        Assert.Contains(diverged[0]!["differences"]!.AsArray(), d => d!.GetValue<string>().Contains("commands[0].payload.version", StringComparison.Ordinal));
        Assert.Equal(running, (await node.GetAsync("info", ct)).Body!["manifest"]!["version"]!.GetValue<string>());

        // Declared as a migration, the same change is applied (the check still reports it).
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.yaml"), RunnerNode.SagaManifest + "\nversion: \"2\"\nmigrate: true\n", ct);
        var declared = await node.PostAsync("admin/reload", ct);
        Assert.Equal(HttpStatusCode.OK, declared.Status);
        Assert.True(declared.Body!["check"]!["sagas"]![0]!["migrate"]!.GetValue<bool>());
        Assert.Equal(3, declared.Body["check"]!["sagas"]![0]!["diverged"]!.AsArray().Count);
        Assert.NotEqual(running, (await node.GetAsync("info", ct)).Body!["manifest"]!["version"]!.GetValue<string>());

        // Forced: no check at all.
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.yaml"), RunnerNode.SagaManifest, ct);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.js"), RunnerNode.Script("v3"), ct);
        Assert.Equal((HttpStatusCode)422, (await node.PostAsync("admin/reload", ct)).Status);
        var forced = await node.PostAsync("admin/reload?force=true", ct);
        Assert.Equal(HttpStatusCode.OK, forced.Status);
        release.SetResult();
    }

    private const string TallyManifest = """
        kind: saga
        name: tally
        script: tally.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.tally.*.added", correlation: "subject[3]" }
        """;

    private static string TallyScript(int factor) => $$"""
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { order: [] };
          return { state: { order: state.order.concat([event.data.n * {{factor}}]) } };
        }
        """;

    [Fact]
    public async Task A_reset_shows_its_dry_run_needs_the_token_of_it_and_then_replays_with_the_current_script()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct,
            extraManifests: new Dictionary<string, string> { ["tally.yaml"] = TallyManifest, ["tally.js"] = TallyScript(2) });
        foreach (var n in new[] { 1, 2, 3 })
        {
            var evt = new System.Text.Json.Nodes.JsonObject { ["specversion"] = "1.0", ["id"] = $"t-{n}", ["source"] = "ops-test", ["type"] = "added", ["data"] = new System.Text.Json.Nodes.JsonObject { ["n"] = n } };
            (await scope.Js.PublishAsync("aggregate.acme.tally.t1.added", System.Text.Encoding.UTF8.GetBytes(evt.ToJsonString()), cancellationToken: ct)).EnsureSuccess();
        }
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/instances/tally/t1", ct, RunnerNode.Token)).Body?["summary"]?["version"]?.GetValue<long>() == 3,
            "t1 at version 3", ct);
        // The fix: its replay diverges from the live instance, so the reload is forced.
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "tally.js"), TallyScript(1), ct);
        Assert.Equal((HttpStatusCode)422, (await node.PostAsync("admin/reload", ct)).Status);
        Assert.Equal(HttpStatusCode.OK, (await node.PostAsync("admin/reload?force=true", ct)).Status);

        var cli = new Dictionary<string, string>(node.Environment) { ["RUNNER_DATA_DIR"] = node.Dir.File("cli-data") };
        string token;
        using (var command = RunnerProcess.Start(["instances", "reset", "tally", "t1", "--to", "1"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains("reset acme/tally/t1 from version 3 to 1: 2 step(s) replayed with the current script", command.Output, StringComparison.Ordinal);
            Assert.Contains("v2 added (t-2): state.order[1]: expected 4, got 2", command.Output, StringComparison.Ordinal);
            Assert.Contains("state after {\"order\":[2,2,3]}", command.Output, StringComparison.Ordinal);
            token = System.Text.RegularExpressions.Regex.Match(command.Output, "--confirm ([0-9a-f]{12})").Groups[1].Value;
            Assert.Equal(12, token.Length);
        }
        // The dry run changed nothing; a wrong token is refused.
        Assert.Equal([2, 4, 6], Order((await node.GetAsync("admin/instances/tally/t1", ct, RunnerNode.Token)).Body!));
        using (var command = RunnerProcess.Start(["instances", "reset", "tally", "t1", "--to", "1", "--confirm", "000000000000"], cli))
        {
            Assert.Equal(1, await command.WaitForExitAsync(ct));
            Assert.Contains("the token does not fit", command.Output, StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await node.PostAsync($"admin/instances/tally/t1/reset?to=1&confirm={token}", ct, token: null)).Status);
        var applied = await node.PostAsync($"admin/instances/tally/t1/reset?to=1&confirm={token}", ct);
        Assert.Equal(HttpStatusCode.OK, applied.Status);
        Assert.True(applied.Body!["applied"]!.GetValue<bool>());
        var now = (await node.GetAsync("admin/instances/tally/t1", ct, RunnerNode.Token)).Body!;
        Assert.Equal([2, 2, 3], Order(now));
        Assert.Equal(3, now["history"]!.AsArray().Count);
        // The same token again is the same message: the reset it named is done once.
        var again = await node.PostAsync($"admin/instances/tally/t1/reset?to=1&confirm={token}", ct);
        Assert.Equal(HttpStatusCode.OK, again.Status);
        Assert.Equal(now["history"]!.ToJsonString(), (await node.GetAsync("admin/instances/tally/t1", ct, RunnerNode.Token)).Body!["history"]!.ToJsonString());
        // A reset to a version the instance does not have is refused before anything is sent.
        var impossible = await node.PostAsync("admin/instances/tally/t1/reset?to=9", ct);
        Assert.Equal(HttpStatusCode.Conflict, impossible.Status);
        Assert.Contains("must be in [0, 2]", impossible.Body!["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_saga_reset_takes_every_instance_that_ran_since_a_time_back_before_it()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct,
            extraManifests: new Dictionary<string, string> { ["tally.yaml"] = TallyManifest, ["tally.js"] = TallyScript(1) });
        async Task PublishAsync(string key, int n)
        {
            var evt = new System.Text.Json.Nodes.JsonObject { ["specversion"] = "1.0", ["id"] = $"{key}-{n}", ["source"] = "ops-test", ["type"] = "added", ["data"] = new System.Text.Json.Nodes.JsonObject { ["n"] = n } };
            (await scope.Js.PublishAsync($"aggregate.acme.tally.{key}.added", System.Text.Encoding.UTF8.GetBytes(evt.ToJsonString()), cancellationToken: ct)).EnsureSuccess();
        }
        async Task<long?> VersionAsync(string key) => (await node.GetAsync($"admin/instances/tally/{key}", ct, RunnerNode.Token)).Body?["summary"]?["version"]?.GetValue<long>();
        foreach (var key in new[] { "a", "b", "c" })
        {
            await PublishAsync(key, 1);
        }
        await node.WaitUntilAsync(async () => await VersionAsync("a") == 1 && await VersionAsync("b") == 1 && await VersionAsync("c") == 1, "a, b and c at version 1", ct);

        // The bad deploy: from now on tally doubles. a and b get events, c does not.
        await Task.Delay(50, ct);
        var since = DateTimeOffset.UtcNow;
        await Task.Delay(50, ct);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "tally.js"), TallyScript(2), ct);
        Assert.Equal(HttpStatusCode.OK, (await node.PostAsync("admin/reload?force=true", ct)).Status);
        await PublishAsync("a", 2);
        await PublishAsync("b", 3);
        await node.WaitUntilAsync(async () => await VersionAsync("a") == 2 && await VersionAsync("b") == 2, "a and b at version 2", ct);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "tally.js"), TallyScript(1), ct);
        Assert.Equal(HttpStatusCode.OK, (await node.PostAsync("admin/reload?force=true", ct)).Status);

        var cli = new Dictionary<string, string>(node.Environment) { ["RUNNER_DATA_DIR"] = node.Dir.File("cli-data") };
        var sinceText = since.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        string token;
        using (var command = RunnerProcess.Start(["saga", "reset", "tally", "--since", sinceText], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains("2 instance(s)", command.Output, StringComparison.Ordinal);
            Assert.Contains("acme/tally/a: v2 -> v1, 1 step(s) replayed, 1 differ; state after {\"order\":[1,2]}", command.Output, StringComparison.Ordinal);
            Assert.Contains("acme/tally/b: v2 -> v1, 1 step(s) replayed, 1 differ; state after {\"order\":[1,3]}", command.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("tally/c", command.Output, StringComparison.Ordinal);
            token = System.Text.RegularExpressions.Regex.Match(command.Output, "--confirm ([0-9a-f]{12})").Groups[1].Value;
        }
        Assert.Equal([1, 4], Order((await node.GetAsync("admin/instances/tally/a", ct, RunnerNode.Token)).Body!));
        using (var command = RunnerProcess.Start(["saga", "reset", "tally", "--since", sinceText, "--confirm", token], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains("2 of 2 instance(s) reset", command.Output, StringComparison.Ordinal);
        }
        Assert.Equal([1, 2], Order((await node.GetAsync("admin/instances/tally/a", ct, RunnerNode.Token)).Body!));
        Assert.Equal([1, 3], Order((await node.GetAsync("admin/instances/tally/b", ct, RunnerNode.Token)).Body!));
        Assert.Equal([1], Order((await node.GetAsync("admin/instances/tally/c", ct, RunnerNode.Token)).Body!));
        // The replayed steps ran since then too: a dry run now replays them to the same outcome.
        using (var command = RunnerProcess.Start(["saga", "reset", "tally", "--since", sinceText], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains("acme/tally/a: v2 -> v1, 1 step(s) replayed, 0 differ", command.Output, StringComparison.Ordinal);
            Assert.Contains("acme/tally/b: v2 -> v1, 1 step(s) replayed, 0 differ", command.Output, StringComparison.Ordinal);
        }
    }

    private static List<int> Order(System.Text.Json.Nodes.JsonNode shown) => [.. shown["state"]!["order"]!.AsArray().Select(n => n!.GetValue<int>())];
}
