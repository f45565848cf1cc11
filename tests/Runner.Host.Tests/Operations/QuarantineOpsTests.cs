using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary><c>runner quarantine show|requeue|discard</c> and <c>/admin/quarantine</c> on a real runner process.</summary>
public sealed class QuarantineOpsTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    /// <summary>Keyed by data.order, but the producer sends data.order_id: every event is quarantined as no_correlation_key until the manifest is fixed.</summary>
    private static string LateManifest(string correlation) => $$"""
        kind: saga
        name: late
        script: late.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.late.*.placed", correlation: "{{correlation}}" }
        """;

    private const string LateScript = """
        'use strict';
        function on_event(state, event, ctx) { return { state: { order: event.data.order_id } }; }
        """;

    [Fact]
    public async Task A_quarantined_event_is_requeued_after_the_manifest_is_fixed_and_a_bad_one_discarded()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct,
            extraManifests: new Dictionary<string, string> { ["late.yaml"] = LateManifest("$.data.order"), ["late.js"] = LateScript });
        var evt = new JsonObject { ["specversion"] = "1.0", ["id"] = "late-1", ["source"] = "ops-test", ["type"] = "placed", ["data"] = new JsonObject { ["order_id"] = "o-77" } };
        (await scope.Js.PublishAsync("aggregate.acme.late.x.placed", Encoding.UTF8.GetBytes(evt.ToJsonString()), cancellationToken: ct)).EnsureSuccess();
        (await scope.Js.PublishAsync("aggregate.acme.late.y.placed", "{not json"u8.ToArray(), cancellationToken: ct)).EnsureSuccess();

        JsonNode? listed = null;
        await node.WaitUntilAsync(async () =>
        {
            listed = (await node.GetAsync("admin/quarantine", ct, RunnerNode.Token)).Body;
            return listed?["entries"]?.AsArray().Count == 2;
        }, "two quarantine records", ct);
        var reasons = listed!["entries"]!.AsArray().Select(e => e!["record"]!["reason"]!.GetValue<string>()).Order(StringComparer.Ordinal);
        Assert.Equal(["no_correlation_key", "not_json"], reasons);
        Assert.All(listed["entries"]!.AsArray(), e => Assert.Equal(node.Environment["RUNNER_WORKER_ID"], e!["worker"]!.GetValue<string>()));

        Assert.Equal(HttpStatusCode.Unauthorized, (await node.GetAsync("admin/quarantine", ct)).Status);
        var unfiltered = await node.PostAsync("admin/quarantine/requeue", ct);
        Assert.Equal(HttpStatusCode.BadRequest, unfiltered.Status);
        Assert.Contains("needs id= or a filter", unfiltered.Text, StringComparison.Ordinal);

        // Fix the correlation and reload; a dry run says what a requeue would do and changes nothing.
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "late.yaml"), LateManifest("$.data.order_id"), ct);
        Assert.Equal(HttpStatusCode.OK, (await node.PostAsync("admin/reload", ct)).Status);
        var cli = new Dictionary<string, string>(node.Environment) { ["RUNNER_DATA_DIR"] = node.Dir.File("cli-data") };
        using (var command = RunnerProcess.Start(["quarantine", "requeue", "--reason", "no_correlation_key", "--dry-run"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains(" would_requeue [no_correlation_key aggregate.acme.late.x.placed", command.Output, StringComparison.Ordinal);
            Assert.Contains("1 record(s) (dry run: nothing changed)", command.Output, StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await node.GetAsync("admin/instances/late/o-77?tenant=acme", ct, RunnerNode.Token)).Status);

        using (var command = RunnerProcess.Start(["quarantine", "requeue", "--reason", "no_correlation_key"], cli))
        {
            Assert.Equal(0, await command.WaitForExitAsync(ct));
            Assert.Contains(" requeued as AGGREGATE_EVENTS#", command.Output, StringComparison.Ordinal);
        }
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/instances/late/o-77?tenant=acme", ct, RunnerNode.Token)).Status == HttpStatusCode.OK,
            "the requeued event applied under its key", ct);
        var instance = (await node.GetAsync("admin/instances/late/o-77?tenant=acme", ct, RunnerNode.Token)).Body!;
        Assert.Equal("late-1", instance["history"]![0]!["event_id"]!.GetValue<string>());

        // The record stays, with the copy it became; it is left out of lists unless asked for.
        Assert.Empty((await node.GetAsync("admin/quarantine?reason=no_correlation_key", ct, RunnerNode.Token)).Body!["entries"]!.AsArray());
        var kept = (await node.GetAsync("admin/quarantine?reason=no_correlation_key&include_requeued=true", ct, RunnerNode.Token)).Body!["entries"]!.AsArray();
        var copy = Assert.Single(Assert.Single(kept)!["record"]!["requeued"]!.AsArray())!;
        Assert.StartsWith("requeue:", copy["msg_id"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("AGGREGATE_EVENTS", copy["stream"]!.GetValue<string>());

        // Not JSON stays not JSON: discard it.
        var discard = await node.PostAsync("admin/quarantine/discard?reason=not_json", ct);
        Assert.Equal(HttpStatusCode.OK, discard.Status);
        Assert.Equal("discarded", Assert.Single(discard.Body!["results"]!.AsArray())!["outcome"]!.GetValue<string>());
        Assert.Empty((await node.GetAsync("admin/quarantine", ct, RunnerNode.Token)).Body!["entries"]!.AsArray());
    }
}
