using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using NATS.Client.JetStream;
using Runner.Host.Tests.Browser;
using Runner.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Runner.Host.Tests.Operations;

/// <summary>
/// The admin page of a real <c>runner serve</c>: its endpoints behind the token, its files from the
/// binary, and its flows in headless Chromium (refused without the token; partitions, instances
/// with history and state diffs, skipping a parked instance, requeue and discard after a dry run,
/// breakers, the throughput plot), with a screenshot of each.
/// </summary>
public sealed class AdminPageTests(NatsServerFixture nats, ITestOutputHelper output) : IClassFixture<NatsServerFixture>
{
    /// <summary>Folds each <c>added</c> event's n into a list, and throws on 13: the instance parks there.</summary>
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

    /// <summary>Keyed by data.order while the producer sends data.order_id: quarantined as no_correlation_key until fixed.</summary>
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

    private const int Burst = 20;

    private static readonly string[] s_assets = ["index.html", "admin.css", "admin.js", "api.js", "dom.js", "diff.js", "plot.js", "sections.js"];

    [Fact]
    public async Task Partitions_and_throughput_answer_behind_the_token_and_the_page_comes_from_the_binary_with_nothing_external()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        var worker = node.Environment["RUNNER_WORKER_ID"];
        for (var n = 1; n <= 3; n++)
        {
            await RunnerNode.PublishCreatedAsync(scope.Js, $"k{n}", n, ct);
        }
        await node.WaitOpDoneAsync(3, ct);

        Assert.Equal(HttpStatusCode.Unauthorized, (await node.GetAsync("admin/partitions", ct)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await node.GetAsync("admin/throughput", ct, "wrong")).Status);
        JsonNode? table = null;
        await node.WaitUntilAsync(async () =>
        {
            table = (await node.GetAsync("admin/partitions", ct, RunnerNode.Token)).Body;
            var rows = table?["partitions"]?.AsArray();
            // The owners write their checkpoints into the leases as they renew them.
            return rows?.All(p => p!["state"]!.GetValue<string>() == "held" && p["lag"] is not null) == true
                && rows.Sum(p => (long)p!["checkpoint"]!.GetValue<ulong>()) >= 6;
        }, "4 held partitions with their lag, past the 6 transitions' inbox messages", ct);
        var partitions = table!["partitions"]!.AsArray();
        Assert.Equal([0, 1, 2, 3], partitions.Select(p => p!["partition"]!.GetValue<int>()));
        Assert.All(partitions, p =>
        {
            Assert.Equal(worker, p!["owner"]!.GetValue<string>());
            Assert.Equal(1, p["epoch"]!.GetValue<long>());
            Assert.Equal(0ul, p["lag"]!.GetValue<ulong>());
        });
        var replica = Assert.Single(table["replicas"]!.AsArray())!;
        Assert.Equal(worker, replica["worker"]!.GetValue<string>());
        Assert.Equal(4, replica["partitions"]!.GetValue<int>());

        var (status, sample, text) = await node.GetAsync("admin/throughput", ct, RunnerNode.Token);
        Assert.True(status == HttpStatusCode.OK, text);
        Assert.Equal(worker, sample!["worker"]!.GetValue<string>());
        Assert.Equal(6, sample["transitions"]!.GetValue<long>());
        Assert.Equal(6, sample["routed"]!.GetValue<long>()); // three triggers, three effect results
        Assert.Equal(3, sample["commands_dispatched"]!.GetValue<long>());
        Assert.Equal(3, sample["effects_completed"]!.GetValue<long>());
        Assert.Equal(0, sample["quarantined"]!.GetValue<long>());
        Assert.InRange(sample["at_ms"]!.GetValue<long>(), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeMilliseconds());

        // The page's files need no token (the page asks for it), are the binary's own, and fetch nothing from elsewhere.
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(node.Environment["RUNNER_HTTP_URLS"] + "/") };
        using (var redirect = await http.GetAsync(new Uri("admin/ui", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
            Assert.Equal("ui/", redirect.Headers.Location!.OriginalString);
        }
        foreach (var asset in s_assets)
        {
            using var response = await http.GetAsync(new Uri("admin/ui/" + (asset == "index.html" ? "" : asset), UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(asset.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript" : asset.EndsWith(".css", StringComparison.Ordinal) ? "text/css" : "text/html",
                response.Content.Headers.ContentType!.MediaType);
            Assert.Contains("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.DoesNotContain("http://", body, StringComparison.Ordinal);
            Assert.DoesNotContain("https://", body, StringComparison.Ordinal);
            // Data goes in as text: nothing parses strings as markup.
            foreach (var markup in new[] { ".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(" })
            {
                Assert.DoesNotContain(markup, body, StringComparison.Ordinal);
            }
        }
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri("admin/ui/nothing.js", UriKind.Relative), ct)).StatusCode);
    }

    [Fact]
    public async Task The_admin_page_refuses_without_the_token_and_with_it_shows_and_acts_on_partitions_instances_parked_quarantine_effects_and_throughput()
    {
        BrowserScript.RequirePrerequisites();
        await using var scope = await OpsScope.StartAsync(nats, TimeSpan.FromMinutes(3));
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct, extraManifests: new Dictionary<string, string>
        {
            ["fragile.yaml"] = FragileManifest, ["fragile.js"] = FragileScript,
            ["late.yaml"] = LateManifest("$.data.order"), ["late.js"] = LateScript,
        });
        var worker = node.Environment["RUNNER_WORKER_ID"];
        string[] keys = ["o1", "o2", "o3", "o4"];
        foreach (var (key, n) in keys.Select((k, i) => (k, i)))
        {
            await RunnerNode.PublishCreatedAsync(scope.Js, key, n, ct);
        }
        foreach (var n in new[] { 1, 13, 3 })
        {
            await PublishAsync(scope.Js, "aggregate.acme.fragile.f1.added", new JsonObject { ["specversion"] = "1.0", ["id"] = $"f-{n}", ["source"] = "admin-page-test", ["type"] = "added", ["data"] = new JsonObject { ["n"] = n } }.ToJsonString(), ct);
        }
        await PublishAsync(scope.Js, "aggregate.acme.late.x.placed", new JsonObject { ["specversion"] = "1.0", ["id"] = "late-1", ["source"] = "admin-page-test", ["type"] = "placed", ["data"] = new JsonObject { ["order_id"] = "o-77" } }.ToJsonString(), ct);
        await PublishAsync(scope.Js, "aggregate.acme.late.y.placed", "{not json", ct);

        await node.WaitOpDoneAsync(keys.Length, ct);
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/instances/fragile/f1", ct, RunnerNode.Token)).Body?["held"]?.AsArray().Count == 2,
            "f1 parked on 13 with 3 held behind it", ct);
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/quarantine", ct, RunnerNode.Token)).Body?["entries"]?.AsArray().Count == 3,
            "three quarantine records (late x and y, fragile's parking)", ct);
        // The fix that lets the requeued event apply.
        await File.WriteAllTextAsync(Path.Combine(node.ManifestDir, "late.yaml"), LateManifest("$.data.order_id"), ct);
        var reload = await node.PostAsync("admin/reload", ct);
        Assert.True(reload.Status == HttpStatusCode.OK, reload.Text);

        var screenshots = Path.Combine(AppContext.BaseDirectory, "TestResults", "admin-page");
        if (Directory.Exists(screenshots))
        {
            Directory.Delete(screenshots, recursive: true);
        }
        var expect = new JsonObject
        {
            ["partitions"] = 4, ["owner"] = worker, ["saga"] = "op", ["keys"] = new JsonArray([.. keys.Select(k => JsonValue.Create(k))]),
            ["parked"] = new JsonObject { ["saga"] = "fragile", ["key"] = "f1", ["skip_fold"] = new JsonArray(1, 3) },
            ["requeue"] = "no_correlation_key", ["discard"] = "not_json", ["effect"] = "work.do",
            ["burst_transitions"] = 2 * Burst, // each op instance: created, then its effect's result
        };
        var burst = 0;
        var started = DateTime.UtcNow;
        var (exit, scriptOutput, result) = await BrowserScript.RunAsync("admin-page.mjs", new Dictionary<string, string>
        {
            ["RUNNER_ADMIN_URL"] = node.Environment["RUNNER_HTTP_URLS"] + "/admin/ui/",
            ["RUNNER_ADMIN_TOKEN"] = RunnerNode.Token,
            ["RUNNER_ADMIN_SCREENSHOTS"] = screenshots,
            ["RUNNER_ADMIN_EXPECT"] = expect.ToJsonString(),
        }, async evt =>
        {
            if (evt["event"]!.GetValue<string>() == "throughput-waiting")
            {
                // Traffic for the plot: the page must show these transitions as a rate.
                for (; burst < Burst; burst++)
                {
                    await RunnerNode.PublishCreatedAsync(scope.Js, $"t{burst}", 100 + burst, ct);
                }
            }
        }, ct);
        output.WriteLine($"admin-page.mjs: exit {exit} after {(DateTime.UtcNow - started).TotalSeconds:F1} s; screenshots in {screenshots}");
        output.WriteLine(scriptOutput);
        Assert.True(exit == 0, $"admin-page.mjs failed (exit {exit}):\n{scriptOutput}\nrunner:\n{node.Tail()}");
        Assert.True(result?["ok"]?.GetValue<bool>() == true, scriptOutput);
        Assert.Equal(["no-token", "wrong-token", "partitions", "instances-search", "instance-history", "parked-skip", "quarantine", "effects", "throughput"],
            result!["steps"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
        Assert.Equal(Burst, burst);

        // What the clicks did, seen from the server.
        var fragile = (await node.GetAsync("admin/instances/fragile/f1", ct, RunnerNode.Token)).Body!;
        Assert.Equal("running", fragile["summary"]!["status"]!.GetValue<string>());
        Assert.Equal([1, 3], fragile["state"]!["order"]!.AsArray().Select(n => n!.GetValue<int>()));
        Assert.Empty(fragile["held"]!.AsArray());
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/instances/late/o-77?tenant=acme", ct, RunnerNode.Token)).Status == HttpStatusCode.OK,
            "the requeued event applied under its key", ct);
        var left = (await node.GetAsync("admin/quarantine", ct, RunnerNode.Token)).Body!["entries"]!.AsArray();
        Assert.Equal("script_error", Assert.Single(left)!["record"]!["reason"]!.GetValue<string>());

        var files = Directory.GetFiles(screenshots, "*.png").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(result["screenshots"]!.AsArray().Count, files.Count);
        Assert.Contains("01-no-token.png", files);
        Assert.Contains("13-throughput.png", files);
        Assert.All(Directory.GetFiles(screenshots, "*.png"), f => Assert.True(new FileInfo(f).Length > 1000, f));
    }

    private static async Task PublishAsync(INatsJSContext js, string subject, string body, CancellationToken cancellationToken) =>
        (await js.PublishAsync(subject, Encoding.UTF8.GetBytes(body), cancellationToken: cancellationToken)).EnsureSuccess();
}
