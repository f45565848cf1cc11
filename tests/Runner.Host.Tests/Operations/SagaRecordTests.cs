using System.Net;
using System.Text.Json.Nodes;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>
/// <c>runner saga record</c> against a real runner, then <c>runner saga test</c> offline: the
/// recorded history passes with the script that made it and fails, naming the difference, with a
/// changed one.
/// </summary>
public sealed class SagaRecordTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task A_recorded_instance_passes_saga_test_and_a_changed_script_fails_naming_the_command_payload()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        await RunnerNode.PublishCreatedAsync(scope.Js, "o1", 3, ct);
        await node.WaitUntilAsync(async () =>
        {
            var (status, body, _) = await node.GetAsync("admin/instances/op/o1?tenant=acme", ct, RunnerNode.Token);
            return status == HttpStatusCode.OK && body?["summary"]?["status"]?.GetValue<string>() == "done";
        }, "o1 done", ct);

        // Recorded from outside the runner, over NATS.
        var cli = new Dictionary<string, string>(node.Environment) { ["RUNNER_DATA_DIR"] = node.Dir.File("cli-data") };
        var golden = node.Dir.File("o1.jsonl");
        using (var record = RunnerProcess.Start(["saga", "record", "op", "o1", "--out", golden], cli))
        {
            Assert.True(await record.WaitForExitAsync(ct) == 0, record.Output);
            Assert.Contains($"recorded 2 step(s) of acme/op/o1 to {golden}", record.Output, StringComparison.Ordinal);
        }
        var lines = await File.ReadAllLinesAsync(golden, ct);
        Assert.Equal(3, lines.Length);
        var header = JsonNode.Parse(lines[0])!;
        Assert.Equal("""{"saga":"op","tenant":"acme","key":"o1"}""", header.ToJsonString());
        var first = JsonNode.Parse(lines[1])!;
        Assert.Equal("created-o1-3", first["event"]!["id"]!.GetValue<string>());
        Assert.Equal("aggregate.acme.op.o1.created", first["event"]!["subject"]!.GetValue<string>());
        Assert.Equal(3, first["expect"]!["commands"]![0]!["payload"]!["n"]!.GetValue<int>());
        Assert.Equal("work.do.succeeded", JsonNode.Parse(lines[2])!["event"]!["type"]!.GetValue<string>());

        // Offline: no NATS in the environment, only the manifests.
        using (var test = RunnerProcess.Start(["saga", "test", golden, "--manifests", node.ManifestDir], new Dictionary<string, string>()))
        {
            Assert.True(await test.WaitForExitAsync(ct) == 0, test.Output);
            Assert.Contains($"ok   {golden}  (2 steps)", test.Output, StringComparison.Ordinal);
        }

        var changed = node.Dir.File("changed-manifests");
        Directory.CreateDirectory(changed);
        foreach (var file in Directory.GetFiles(node.ManifestDir))
        {
            File.Copy(file, Path.Combine(changed, Path.GetFileName(file)));
        }
        var script = RunnerNode.Script("v1");
        Assert.Contains("n: event.data.n,", script, StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(changed, "op.js"), script.Replace("n: event.data.n,", "n: event.data.n * 10,", StringComparison.Ordinal), ct);
        using (var test = RunnerProcess.Start(["saga", "test", golden, "--manifests", changed], new Dictionary<string, string>()))
        {
            Assert.True(await test.WaitForExitAsync(ct) == 1, test.Output);
            Assert.Contains($"FAIL {golden}", test.Output, StringComparison.Ordinal);
            Assert.Contains("step 1 (created created-o1-3): commands[0].payload.n: expected 3, got 30", test.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("step 2", test.Output, StringComparison.Ordinal);
        }

        using (var missing = RunnerProcess.Start(["saga", "record", "op", "nobody", "--tenant", "acme"], cli))
        {
            Assert.True(await missing.WaitForExitAsync(ct) == 1, missing.Output);
            Assert.Contains("no instance op/nobody of tenant acme", missing.Output, StringComparison.Ordinal);
        }
    }
}
