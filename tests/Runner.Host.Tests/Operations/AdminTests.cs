using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Storage;
using Runner.Host.Http;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>Admin authentication and manifest reload on the real binary.</summary>
public sealed class AdminTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Admin_endpoints_need_the_right_bearer_token_and_the_others_need_none()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, stub) = (scope.Token, scope.Stub);
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct);

        foreach (var path in new[] { "admin/drain", "admin/reload", "admin/resume" })
        {
            var missing = await node.PostAsync(path, ct, token: null);
            Assert.Equal(HttpStatusCode.Unauthorized, missing.Status);
            var wrong = await node.PostAsync(path, ct, token: RunnerNode.Token + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
            var prefix = await node.PostAsync(path, ct, token: RunnerNode.Token[..^1]);
            Assert.Equal(HttpStatusCode.Unauthorized, prefix.Status);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await node.GetAsync("admin/drain", ct)).Status);
        // Refused requests did nothing.
        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("ready", ct)).Status);

        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("health", ct)).Status);
        var metrics = await node.GetAsync("metrics", ct);
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        var info = await node.GetAsync("info", ct);
        Assert.Equal(HttpStatusCode.OK, info.Status);
        Assert.Equal("combined", info.Body!["mode"]!.GetValue<string>());
        Assert.Equal(4, info.Body!["owned_partitions"]!.AsArray().Count);
        Assert.Contains(info.Body!["consumers"]!.AsArray(), c => c!["consumer"]!.GetValue<string>() == "runner-effect-work=do");
        Assert.Equal("op", info.Body!["manifest"]!["sagas"]![0]!["name"]!.GetValue<string>());
        Assert.Equal(64, info.Body!["manifest"]!["version"]!.GetValue<string>().Length);
        Assert.True(info.Body!.AsObject().ContainsKey("slice_isolation"));

        var right = await node.GetAsync("admin/drain", ct, RunnerNode.Token);
        Assert.Equal(HttpStatusCode.OK, right.Status);
        Assert.Equal("running", right.Body!["state"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Accepted, (await node.PostAsync("admin/drain", ct)).Status);

        // The container health check: healthy while drained, not ready.
        Assert.Equal(0, await HealthCommandAsync(node, [], ct));
        Assert.Equal(1, await HealthCommandAsync(node, ["--ready"], ct));
    }

    [Fact]
    public async Task Info_reports_what_the_slice_capability_probe_found_on_a_node_with_slice_effects()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, stub) = (scope.Token, scope.Stub);
        var sliceBinary = await SliceBinary.PathAsync();
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct,
            configure: env => env["RUNNER_SLICE_BIN"] = sliceBinary,
            extraManifests: new Dictionary<string, string>
            {
                ["slices.yaml"] = """
                    kind: effect
                    name: slice.launch
                    provider: slice
                    pool: etl
                    slice: { paths: { ro: [/tmp], rw: [/tmp] } }
                    """,
            });

        var info = await node.GetAsync("info", ct);

        Assert.Equal(HttpStatusCode.OK, info.Status);
        var isolation = info.Body!["slice_isolation"]!;
        Assert.True(isolation["isolated"]!.GetValue<bool>(), isolation.ToJsonString());
        Assert.Equal(new HashSet<string> { "user", "pid", "net", "mount", "uts", "ipc" }, isolation["namespaces"]!.AsArray().Select(n => n!.GetValue<string>()).ToHashSet());
        Assert.Contains(isolation["cgroup_version"]!.GetValue<string>(), new[] { "v1", "v2" });
        Assert.Contains("memory", isolation["cgroup_controllers"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Empty(isolation["problems"]!.AsArray());
        Assert.Contains(info.Body!["manifest"]!["effects"]!.AsArray(), e => e!["provider"]!.GetValue<string>() == "slice");
    }

    private static async Task<int> HealthCommandAsync(RunnerNode node, string[] args, CancellationToken cancellationToken)
    {
        using var process = RunnerProcess.Start(["health", .. args], node.Environment);
        return await process.WaitForExitAsync(cancellationToken);
    }

    [Fact]
    public async Task Without_a_token_file_admin_endpoints_are_disabled_not_open()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, stub) = (scope.Token, scope.Stub);
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct, adminToken: false);

        var drain = await node.PostAsync("admin/drain", ct);
        Assert.Equal(HttpStatusCode.Forbidden, drain.Status);
        Assert.Contains("disabled", drain.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await node.PostAsync("admin/reload", ct, token: null)).Status);
        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("ready", ct)).Status);
    }

    [Fact]
    public async Task Reload_applies_a_valid_change_from_the_next_batch_and_refuses_an_invalid_one_with_422()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js, stub) = (scope.Token, scope.Js, scope.Stub);
        // k1's call is held across the reload: its instance is in flight when the scripts change.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = scope.HoldWork(release.Task, held: 1);
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct);

        await RunnerNode.PublishCreatedAsync(js, "k1", 1, ct);
        await arrived.WaitAsync(ct);
        Assert.Equal("v1", RunnerNode.Json(stub.Requests[0].Body).GetProperty("version").GetString());
        var before = (await node.GetAsync("info", ct)).Body!["manifest"]!["version"]!.GetValue<string>();

        // v2: a changed script, and a new effect it commands, which gets its worker on reload. It
        // changes what live instances do (k1's replay diverges), so the manifest declares it.
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.js"), RunnerNode.Script("v2", effect: "work.extra"), ct);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.yaml"), RunnerNode.SagaManifest + "\nversion: v2\nmigrate: true\n", ct);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "extra.yaml"), $$"""
            kind: effect
            name: work.extra
            provider: http
            http: { url: "{{stub.Url}}extra" }
            """, ct);
        var reload = await node.PostAsync("admin/reload", ct);
        Assert.Equal(HttpStatusCode.OK, reload.Status);
        Assert.True(reload.Body!["applied"]!.GetValue<bool>());
        Assert.Equal(before, reload.Body!["previous_version"]!.GetValue<string>());
        var after = reload.Body!["version"]!.GetValue<string>();
        Assert.NotEqual(before, after);
        Assert.Equal(["op"], reload.Body!["changes"]!["sagas_changed"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["work.extra"], reload.Body!["changes"]!["effects_added"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["work.extra"], reload.Body!["effect_workers_started"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(after, (await node.GetAsync("info", ct)).Body!["manifest"]!["version"]!.GetValue<string>());
        var check = reload.Body!["check"]!["sagas"]![0]!;
        Assert.Equal(("op", true, 1), (check["saga"]!.GetValue<string>(), check["migrate"]!.GetValue<bool>(), check["diverged"]!.AsArray().Count));

        // The in-flight instance continues on the new script: its result runs v2's on_event.
        release.TrySetResult();
        await node.WaitUntilAsync(async () => await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, "workflow.evt.acme.work.do.succeeded") == 1, "k1's result", ct);

        // The next transition runs the new script, and the new effect's worker performs it.
        await RunnerNode.PublishCreatedAsync(js, "k2", 2, ct);
        await node.WaitUntilAsync(() => Task.FromResult(stub.Requests.Any(r => r.PathAndQuery == "/extra")), "the v2 command", ct);
        Assert.Equal("v2", RunnerNode.Json(stub.Requests.Single(r => r.PathAndQuery == "/extra").Body).GetProperty("version").GetString());

        // Invalid: a script that does not compile and a saga with an unknown trigger stream.
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "op.js"), "'use strict';\nfunction on_event(state, event, ctx) {\n  return {;\n}\n", ct);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "bad.yaml"), """
            kind: saga
            name: bad
            script: op.js
            triggers:
              - { stream: NOPE, subject: "aggregate.*.bad.*.x", correlation: "subject[3]" }
            """, ct);
        var refused = await node.PostAsync("admin/reload", ct);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.Status);
        Assert.False(refused.Body!["applied"]!.GetValue<bool>());
        Assert.Equal(after, refused.Body!["version"]!.GetValue<string>());
        var errors = refused.Body!["errors"]!.AsArray().Select(e => e!["text"]!.GetValue<string>()).ToList();
        Assert.Contains(errors, e => e.Contains("op.js:3", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("bad.yaml", StringComparison.Ordinal) && e.Contains("NOPE", StringComparison.Ordinal));

        // The running set (v2) goes on.
        await RunnerNode.PublishCreatedAsync(js, "k3", 3, ct);
        await node.WaitUntilAsync(() => Task.FromResult(stub.Requests.Count(r => r.PathAndQuery == "/extra") == 2), "a v2 command after the refused reload", ct);
        Assert.Equal(after, (await node.GetAsync("info", ct)).Body!["manifest"]!["version"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("ready", ct)).Status);

        // Each transition recorded the script version and the manifest version it ran with.
        // Six transitions: each of k1, k2 and k3 was created and got its result.
        await node.WaitUntilAsync(async () => (await node.GetAsync("metrics", ct)).Text.Contains("runner_saga_transitions_total{saga=\"op\"} 6\n", StringComparison.Ordinal), "six transitions", ct);
        Assert.Equal(0, await node.TerminateAsync(ct));
        var k1 = Instance(node, "k1")!;
        Assert.Equal("v2", k1.State.GetProperty("version").GetString());
        Assert.Equal(after, k1.ManifestHash);
        Assert.Equal(after, Instance(node, "k3")!.ManifestHash);
    }

    /// <summary>The stored instance of saga op for a key, read after the runner exited.</summary>
    private static SagaInstanceRecord? Instance(RunnerNode node, string key)
    {
        using var store = new LmdbStore(new LmdbOptions { Path = Path.Combine(node.Environment["RUNNER_DATA_DIR"], "lmdb") }, NullLogger<LmdbStore>.Instance);
        var instance = new InstanceId(new TenantId("acme"), new SagaName("op"), new CorrelationKey(key));
        var raw = store.Read(r => r.Get(KeySpace.Saga, StoreKeys.Instance(Partitioner.PartitionOf(instance, 4), instance)));
        return raw is null ? null : JsonSerializer.Deserialize(raw, CoreJsonContext.Default.SagaInstanceRecord);
    }

    [Fact]
    public void Token_compare_accepts_only_the_exact_token()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("token"), "  abc123\n");
        var token = AdminToken.FromFile(dir.File("token"));
        Assert.True(token.Enabled);
        Assert.True(token.Accepts("Bearer abc123"));
        Assert.True(token.Accepts("bearer abc123"));
        Assert.False(token.Accepts("Bearer abc1234"));
        Assert.False(token.Accepts("Bearer abc12"));
        Assert.False(token.Accepts("Basic abc123"));
        Assert.False(token.Accepts(null));
        Assert.False(AdminToken.Disabled.Accepts("Bearer abc123"));
        File.WriteAllText(dir.File("empty"), "\n");
        Assert.Throws<InvalidDataException>(() => AdminToken.FromFile(dir.File("empty")));
    }
}
