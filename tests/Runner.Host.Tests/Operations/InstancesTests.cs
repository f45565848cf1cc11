using System.Net;
using System.Text.Json.Nodes;
using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>
/// Inspecting instances on two real runner processes: <c>GET /admin/instances…</c> on either one
/// and <c>runner instances</c> from outside both, each partition answered by its owner.
/// </summary>
public sealed class InstancesTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Either_replica_lists_and_shows_every_instance_with_its_history_and_the_cli_does_too()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var a = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        await using var b = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        await a.WaitUntilAsync(async () => (await a.GetAsync("info", ct)).Body?["owned_partitions"]?.AsArray().Count == 2
            && (await b.GetAsync("info", ct)).Body?["owned_partitions"]?.AsArray().Count == 2, "4 partitions over two replicas", ct);
        var keys = Enumerable.Range(1, 8).Select(i => $"o{i}").ToList();
        foreach (var (key, n) in keys.Select((k, i) => (k, i)))
        {
            await RunnerNode.PublishCreatedAsync(scope.Js, key, n, ct);
        }

        JsonNode? list = null;
        await a.WaitUntilAsync(async () =>
        {
            list = (await a.GetAsync("admin/instances?saga=op&status=done", ct, RunnerNode.Token)).Body;
            return list?["instances"]?.AsArray().Count == 8;
        }, "8 done instances listed", ct);
        Assert.Equal(4, list!["partitions_answered"]!.GetValue<int>());
        Assert.Empty(list["partitions_missing"]!.AsArray());
        Assert.Equal(keys, list["instances"]!.AsArray().Select(i => i!["key"]!.GetValue<string>()));

        var workers = new HashSet<string>();
        foreach (var key in keys)
        {
            var (status, show, text) = await b.GetAsync($"admin/instances/op/{key}", ct, RunnerNode.Token);
            Assert.True(status == HttpStatusCode.OK, text);
            workers.Add(show!["worker"]!.GetValue<string>());
            Assert.Equal("done", show["state"]!["status"]!.GetValue<string>());
            var history = show["history"]!.AsArray();
            Assert.Equal(2, history.Count);
            Assert.Equal(["created", "work.do.succeeded"], history.Select(s => s!["type"]!.GetValue<string>()));
            Assert.Equal("work.do", history[0]!["commands"]![0]!["effect"]!.GetValue<string>());
            Assert.True(history[1]!["done"]!.GetValue<bool>());
            Assert.Equal(show["summary"]!["partition"]!.GetValue<int>(), show["partition"]!.GetValue<int>());
        }
        // Both replicas answered for their own partitions, whichever one was asked.
        Assert.Equal(new[] { a.Environment["RUNNER_WORKER_ID"], b.Environment["RUNNER_WORKER_ID"] }.Order(StringComparer.Ordinal), workers.Order(StringComparer.Ordinal));

        Assert.Equal(HttpStatusCode.Unauthorized, (await a.GetAsync("admin/instances", ct)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await a.GetAsync("admin/instances/op/o1", ct)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await a.GetAsync("admin/instances/op/nobody?tenant=acme", ct, RunnerNode.Token)).Status);
        var bad = await a.GetAsync("admin/instances?status=sleeping", ct, RunnerNode.Token);
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Contains("status must be one of", bad.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await a.GetAsync("admin/instances?older_than=soon", ct, RunnerNode.Token)).Status);
        Assert.Empty((await a.GetAsync("admin/instances?status=running", ct, RunnerNode.Token)).Body!["instances"]!.AsArray());

        // The CLI asks over NATS, from neither replica.
        var cli = new Dictionary<string, string>(a.Environment) { ["RUNNER_DATA_DIR"] = a.Dir.File("cli-data") };
        using (var command = RunnerProcess.Start(["instances", "list", "--saga", "op", "--status", "done", "--limit", "5"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            // The table is standard output; the count line goes to standard error, so the table pipes clean.
            var lines = command.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.StartsWith("TENANT", lines[0], StringComparison.Ordinal);
            Assert.Equal(keys.Take(5), lines.Skip(1).Take(5).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]));
            Assert.Contains("5 instance(s) (more match", command.Output, StringComparison.Ordinal);
        }
        using (var command = RunnerProcess.Start(["instances", "show", "op", "o3", "--json"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            var json = JsonNode.Parse(command.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).First(l => l.StartsWith('{')))!;
            Assert.True(json["found"]!.GetValue<bool>());
            Assert.Equal("o3", json["summary"]!["key"]!.GetValue<string>());
            Assert.Equal(2, json["history"]!.AsArray().Count);
        }
        using (var command = RunnerProcess.Start(["instances", "show", "op", "nobody"], cli))
        {
            Assert.Equal(1, await command.WaitForExitAsync(ct));
            Assert.Contains("no instance op/nobody", command.Output, StringComparison.Ordinal);
        }
        using (var command = RunnerProcess.Start(["instances", "list", "--status", "sleeping"], cli))
        {
            Assert.Equal(2, await command.WaitForExitAsync(ct));
            Assert.Contains("status must be one of", command.Output, StringComparison.Ordinal);
        }
    }

    private const string FragileManifest = """
        kind: saga
        name: fragile
        script: fragile.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.fragile.*.added", correlation: "subject[3]" }
        """;

    private const string FragileScript = """
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { order: [] };
          if (event.data.n === 13) { throw new Error('unlucky'); }
          return { state: { order: state.order.concat([event.data.n]) } };
        }
        """;

    [Fact]
    public async Task A_parked_instance_is_listed_shown_and_skipped_or_resumed_from_http_and_the_cli()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct,
            extraManifests: new Dictionary<string, string> { ["fragile.yaml"] = FragileManifest, ["fragile.js"] = FragileScript });
        foreach (var n in new[] { 1, 13, 3 })
        {
            var evt = new JsonObject { ["specversion"] = "1.0", ["id"] = $"f-{n}", ["source"] = "ops-test", ["type"] = "added", ["data"] = new JsonObject { ["n"] = n } };
            (await scope.Js.PublishAsync("aggregate.acme.fragile.f1.added", System.Text.Encoding.UTF8.GetBytes(evt.ToJsonString()), cancellationToken: ct)).EnsureSuccess();
        }
        JsonNode? shown = null;
        await node.WaitUntilAsync(async () =>
        {
            shown = (await node.GetAsync("admin/instances/fragile/f1", ct, RunnerNode.Token)).Body;
            return shown?["held"]?.AsArray().Count == 2;
        }, "f1 parked with 13 and 3 held", ct);
        Assert.Equal("parked", shown!["summary"]!["status"]!.GetValue<string>());
        Assert.Equal("f-13", shown["parked"]!["event_id"]!.GetValue<string>());
        Assert.Equal("script_error", shown["parked"]!["reason"]!.GetValue<string>());
        Assert.Equal(["f-13", "f-3"], shown["held"]!.AsArray().Select(h => h!["event_id"]!.GetValue<string>()));
        var parkedList = (await node.GetAsync("admin/instances?status=parked", ct, RunnerNode.Token)).Body!;
        Assert.Equal("f1", Assert.Single(parkedList["instances"]!.AsArray())!["key"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.Unauthorized, (await node.PostAsync("admin/instances/fragile/f1/resume", ct, token: null)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await node.PostAsync("admin/instances/fragile/f1/explode", ct)).Status);
        // Resume without a fix: parked again on the same event, the rest still held.
        var again = await node.PostAsync("admin/instances/fragile/f1/resume", ct);
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        Assert.Contains("still parked", again.Body!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(2, again.Body["instance"]!["held"]!.AsArray().Count);

        // Its quarantine record is not requeued: the event waits with the parked instance.
        var requeue = await node.PostAsync("admin/quarantine/requeue?saga=fragile", ct);
        Assert.Equal(HttpStatusCode.OK, requeue.Status);
        // Two records: the first failure and the resume that failed again.
        var refused = requeue.Body!["results"]!.AsArray();
        Assert.Equal(2, refused.Count);
        Assert.All(refused, r => Assert.Equal("refused", r!["outcome"]!.GetValue<string>()));
        Assert.All(refused, r => Assert.Contains("parked on this event", r!["detail"]!.GetValue<string>(), StringComparison.Ordinal));

        // Skip from the CLI: 13 is dropped, 3 applies.
        var cli = new Dictionary<string, string>(node.Environment) { ["RUNNER_DATA_DIR"] = node.Dir.File("cli-data") };
        using (var command = RunnerProcess.Start(["instances", "skip", "fragile", "f1"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains("skip of acme/fragile/f1 applied", command.Output, StringComparison.Ordinal);
            Assert.Contains("now running, version 2", command.Output, StringComparison.Ordinal);
        }
        var after = (await node.GetAsync("admin/instances/fragile/f1", ct, RunnerNode.Token)).Body!;
        Assert.Equal([1, 3], after["state"]!["order"]!.AsArray().Select(n => n!.GetValue<int>()));
        Assert.Empty(after["held"]!.AsArray());

        // f2 parks the same way; a resume before the fix fails again, the one after it (moments later) applies.
        foreach (var n in new[] { 13, 5 })
        {
            var evt = new JsonObject { ["specversion"] = "1.0", ["id"] = $"g-{n}", ["source"] = "ops-test", ["type"] = "added", ["data"] = new JsonObject { ["n"] = n } };
            (await scope.Js.PublishAsync("aggregate.acme.fragile.f2.added", System.Text.Encoding.UTF8.GetBytes(evt.ToJsonString()), cancellationToken: ct)).EnsureSuccess();
        }
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/instances/fragile/f2", ct, RunnerNode.Token)).Body?["held"]?.AsArray().Count == 2, "f2 parked", ct);
        Assert.Equal(HttpStatusCode.Conflict, (await node.PostAsync("admin/instances/fragile/f2/resume", ct)).Status);
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "fragile.js"), FragileScript.Replace("event.data.n === 13", "false", StringComparison.Ordinal), ct);
        var reload = await node.PostAsync("admin/reload", ct);
        Assert.True(reload.Status == HttpStatusCode.OK, reload.Text);
        var resumed = await node.PostAsync("admin/instances/fragile/f2/resume", ct);
        Assert.True(resumed.Status == HttpStatusCode.OK, resumed.Text);
        Assert.Equal([13, 5], resumed.Body!["instance"]!["state"]!["order"]!.AsArray().Select(n => n!.GetValue<int>()));
        var notParked = await node.PostAsync("admin/instances/fragile/f1/resume", ct);
        Assert.Equal(HttpStatusCode.Conflict, notParked.Status);
        Assert.Contains("not parked", notParked.Body!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        using (var command = RunnerProcess.Start(["instances", "resume", "fragile", "f1"], cli))
        {
            Assert.Equal(1, await command.WaitForExitAsync(ct));
            Assert.Contains("not parked", command.Output, StringComparison.Ordinal);
        }
    }
}
