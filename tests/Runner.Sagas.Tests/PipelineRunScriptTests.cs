using System.Text.Json;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Scripting;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The shipped <c>pipeline-run</c> saga script, run as the partition worker runs it.</summary>
public sealed class PipelineRunScriptTests
{
    private static string ShippedManifests =>
        Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "manifests"));

    private static ScriptResult Request(params (string Partition, string Path)[] inputs)
    {
        var loaded = ManifestLoader.Load(ShippedManifests, new StreamNames(), _ => null);
        Assert.True(loaded.Succeeded, string.Join("; ", loaded.Errors));
        var saga = loaded.Set!.Saga("pipeline-run")!;
        var evt = JsonSerializer.Serialize(new
        {
            type = "pipeline.run.requested",
            subject = "pipeline.acme.orders.run.requested",
            data = new
            {
                run_id = "r1",
                pipeline = "orders",
                output_dir = "/out",
                inputs = inputs.Select(i => new { partition = i.Partition, path = i.Path }),
            },
        });
        return saga.Script.Run(new ScriptInput(null, evt, "e1", 1_000, "acme", "pipeline-run", "r1"));
    }

    [Fact]
    public void Run_request_launches_one_slice_per_partition()
    {
        var result = Request(("p0", "/in/p0.jsonl"), ("p1", "/in/p1.jsonl"));

        Assert.True(result.Succeeded, result.Failure?.Message);
        Assert.False(result.Output!.Done);
        Assert.Equal(["slice.launch", "slice.launch"], result.Output.Commands.Select(c => c.Effect));
    }

    [Fact]
    public void Run_request_naming_a_partition_twice_fails_the_run_instead_of_dropping_an_input()
    {
        var result = Request(("p0", "/in/a.jsonl"), ("p0", "/in/b.jsonl"));

        Assert.True(result.Succeeded, result.Failure?.Message);
        Assert.True(result.Output!.Done);
        var notify = Assert.Single(result.Output.Commands);
        Assert.Equal("pipeline.notify", notify.Effect);
        using var payload = JsonDocument.Parse(notify.PayloadJson);
        Assert.Equal("failed", payload.RootElement.GetProperty("outcome").GetString());
        Assert.Contains("p0 more than once", payload.RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }
}
