using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NJsonSchema;
using Runner.Slice.Engine;
using Runner.Slice.Lineage;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>Every run emits START and exactly one terminal event, each valid against the OpenLineage schema.</summary>
public sealed class LineageTests : IClassFixture<NatsServerFixture>
{
    // NJsonSchema resolves draft-7 "definitions" but not 2020-12 "$defs": the same schema with the
    // keyword renamed means the same thing.
    private static readonly Lazy<Task<JsonSchema>> s_schema = new(() => JsonSchema.FromJsonAsync(
        File.ReadAllText(SliceTestKit.Fixture("lineage/OpenLineage.json")).Replace("$defs", "definitions", StringComparison.Ordinal)));
    private readonly NatsServerFixture _nats;

    public LineageTests(NatsServerFixture nats)
    {
        _nats = nats;
    }

    private static async Task AssertValidAsync(string json)
    {
        var schema = await s_schema.Value;
        var errors = schema.Validate(json);
        Assert.True(errors.Count == 0, string.Join("; ", errors.Select(e => $"{e.Path}: {e.Kind}")) + "\n" + json);
    }

    [Fact]
    public async Task The_schema_check_refuses_an_event_that_breaks_it()
    {
        var schema = await s_schema.Value;
        Assert.NotEmpty(schema.Validate("""{"eventType":"START","eventTime":"2026-01-01T00:00:00Z","producer":"urn:x","schemaURL":"https://openlineage.io/spec/2-1-0/OpenLineage.json#/$defs/RunEvent","run":{"runId":"not-a-uuid"},"job":{"namespace":"a","name":"b"}}"""));
        Assert.NotEmpty(schema.Validate("""{"eventType":"START","eventTime":"2026-01-01T00:00:00Z","producer":"urn:x","run":{"runId":"0192f1e6-0000-7000-8000-000000000001"},"job":{"namespace":"a","name":"b"}}"""));
    }

    [Fact]
    public async Task A_successful_run_emits_start_and_complete_with_datasets_statistics_and_assertions()
    {
        using var dir = new TempDirectory("slice-lineage");

        var lineage = await RunToCompletionAsync("golden", dir);

        using var complete = JsonDocument.Parse(lineage.Events[1].Json);
        var root = complete.RootElement;
        Assert.Equal(LineageEvents.RunUuid("golden-1"), root.GetProperty("run").GetProperty("runId").GetString());
        Assert.Equal("acme.orders", root.GetProperty("job").GetProperty("namespace").GetString());
        var input = root.GetProperty("inputs")[0];
        Assert.Equal(dir.File("orders.jsonl"), input.GetProperty("name").GetString());
        Assert.Equal(10, input.GetProperty("inputFacets").GetProperty("inputStatistics").GetProperty("rowCount").GetInt64());
        // The spec's top-level contract is the sink's: its assertions are on the output, none on the input.
        Assert.False(input.GetProperty("inputFacets").TryGetProperty("dataQualityAssertions", out _));
        var output = root.GetProperty("outputs")[0];
        var assertions = output.GetProperty("outputFacets").GetProperty("dataQualityAssertions").GetProperty("assertions").EnumerateArray().ToList();
        Assert.Equal(["order_id", "amount", "status", "ts"], assertions.Select(a => a.GetProperty("column").GetString()));
        Assert.Equal([false, true, false, false], assertions.Select(a => a.GetProperty("success").GetBoolean()));
        Assert.Equal(4, output.GetProperty("outputFacets").GetProperty("outputStatistics").GetProperty("rowCount").GetInt64());
        Assert.Equal(["order_id", "amount", "status", "ts"], output.GetProperty("facets").GetProperty("schema").GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Each_contracts_assertions_are_on_the_dataset_it_guards()
    {
        using var dir = new TempDirectory("slice-lineage");

        var lineage = await RunToCompletionAsync("contracts", dir);

        using var start = JsonDocument.Parse(lineage.Events[0].Json);
        Assert.Equal(["order_id", "amount", "status"], Fields(start.RootElement.GetProperty("inputs")[0]));
        Assert.Equal(["order_id", "amount_cents"], Fields(start.RootElement.GetProperty("outputs")[0]));
        using var complete = JsonDocument.Parse(lineage.Events[1].Json);
        var input = complete.RootElement.GetProperty("inputs")[0];
        var output = complete.RootElement.GetProperty("outputs")[0];
        Assert.Equal(["order_id", "amount", "status"], Fields(input));
        Assert.Equal(["order_id", "amount_cents"], Fields(output));
        // o-2's amount and bad-4's id broke the source's contract; o-5's cents broke the sink's.
        var read = input.GetProperty("inputFacets").GetProperty("dataQualityAssertions").GetProperty("assertions").EnumerateArray().ToList();
        Assert.Equal(["order_id", "amount", "status"], read.Select(a => a.GetProperty("column").GetString()));
        Assert.Equal([false, false, true], read.Select(a => a.GetProperty("success").GetBoolean()));
        Assert.Equal("type number, required, min 0", read[1].GetProperty("assertion").GetString());
        var written = output.GetProperty("outputFacets").GetProperty("dataQualityAssertions").GetProperty("assertions").EnumerateArray().ToList();
        Assert.Equal(["order_id", "amount_cents"], written.Select(a => a.GetProperty("column").GetString()));
        Assert.Equal([true, false], written.Select(a => a.GetProperty("success").GetBoolean()));
        Assert.Equal(6, input.GetProperty("inputFacets").GetProperty("inputStatistics").GetProperty("rowCount").GetInt64());
        Assert.Equal(2, output.GetProperty("outputFacets").GetProperty("outputStatistics").GetProperty("rowCount").GetInt64());
    }

    /// <summary>Runs a fixture's spec, which emits START then COMPLETE, each valid against the schema.</summary>
    private static async Task<RecordingLineage> RunToCompletionAsync(string fixture, TempDirectory dir)
    {
        SliceTestKit.CopyFixtures(fixture, dir);
        var (_, _, lineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));
        Assert.Equal(["START", "COMPLETE"], lineage.Events.Select(e => e.Type));
        foreach (var (_, json) in lineage.Events)
        {
            await AssertValidAsync(json);
        }
        return lineage;
    }

    private static List<string?> Fields(JsonElement dataset) =>
        [.. dataset.GetProperty("facets").GetProperty("schema").GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("name").GetString())];

    [Fact]
    public async Task A_failed_run_emits_start_and_one_fail_with_the_error_message()
    {
        using var dir = new TempDirectory("slice-lineage");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), 200);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, "0192f1e6-0000-7000-8000-0000000000aa",
            extra: "").Replace("max_violation_ratio: 0.5", "max_violation_ratio: 0", StringComparison.Ordinal));

        var (result, _, lineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.ContractThresholdExceeded, result.Outcome);
        Assert.Equal(["START", "FAIL"], lineage.Events.Select(e => e.Type));
        await AssertValidAsync(lineage.Events[1].Json);
        using var fail = JsonDocument.Parse(lineage.Events[1].Json);
        Assert.Equal("0192f1e6-0000-7000-8000-0000000000aa", fail.RootElement.GetProperty("run").GetProperty("runId").GetString());
        Assert.Contains("max_violation_ratio", fail.RootElement.GetProperty("run").GetProperty("facets").GetProperty("errorMessage").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_long_run_sends_throttled_running_events_between_start_and_complete()
    {
        using var dir = new TempDirectory("slice-lineage");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), 100_000);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, "running-1", maxRecords: 200, everyBatches: 1));

        var (_, _, lineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"), new RunOptions { RunningInterval = TimeSpan.FromMilliseconds(50) });

        var types = lineage.Events.Select(e => e.Type).ToList();
        Assert.Equal("START", types[0]);
        Assert.Equal("COMPLETE", types[^1]);
        Assert.Single(types, t => t is "COMPLETE" or "FAIL" or "ABORT");
        Assert.Contains("RUNNING", types);
        Assert.All(types.Skip(1).SkipLast(1), t => Assert.Equal("RUNNING", t));
        foreach (var (_, json) in lineage.Events)
        {
            await AssertValidAsync(json);
        }
    }

    [Fact]
    public async Task The_process_publishes_lineage_to_the_lineage_stream_when_nats_is_configured()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = _nats.Url });
        var js = new NatsJSContext(connection);
        await js.CreateOrUpdateStreamAsync(new StreamConfig("LINEAGE", ["lineage.>"]));
        using var dir = new TempDirectory("slice-lineage");
        SliceTestKit.CopyFixtures("golden", dir);

        var (exit, _, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")],
            new Dictionary<string, string> { ["RUNNER_NATS_URL"] = _nats.Url, ["RUNNER_TENANT"] = "acme" });

        Assert.True(exit == 0, stderr);
        var consumer = await js.CreateOrderedConsumerAsync("LINEAGE", new NatsJSOrderedConsumerOpts { FilterSubjects = ["lineage.acme.acme.orders.normalize"] });
        var events = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 10, Expires = TimeSpan.FromSeconds(2) }, cancellationToken: timeout.Token))
        {
            events.Add(System.Text.Encoding.UTF8.GetString(msg.Data!));
        }
        Assert.Equal(["START", "COMPLETE"], events.Select(e => JsonDocument.Parse(e).RootElement.GetProperty("eventType").GetString()));
        foreach (var json in events)
        {
            await AssertValidAsync(json);
        }
    }

}
