using System.Text.Json;
using Runner.Slice.Engine;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>
/// Contracts on both sides of a run: the source's checks every record read, before any transform
/// (dead letters of stage <c>input_contract</c>); the sink's checks what leaves the transforms
/// (stage <c>contract</c>), as the top-level <c>contract</c> always did. The fixture's six orders:
/// o-1 and o-6 are good, o-2 (amount -1) and bad-4 (its id) break the source's contract, o-3
/// (amount 0) meets it but the filter drops it, o-5 (amount 5000) becomes 500000 cents, over the
/// sink's maximum.
/// </summary>
public sealed class ContractSideTests
{
    private static TempDirectory Fixture()
    {
        var dir = new TempDirectory("slice-contracts");
        SliceTestKit.CopyFixtures("contracts", dir);
        return dir;
    }

    private static List<JsonElement> DeadLetters(TempDirectory dir, string runId = "contracts-1") =>
        [.. File.ReadAllLines(Path.Combine(dir.Path, "dlq", runId + ".jsonl")).Select(line => JsonDocument.Parse(line).RootElement.Clone())];

    private static List<string?> OrderIds(TempDirectory dir, string runId = "contracts-1") =>
        [.. File.ReadAllLines(Path.Combine(dir.Path, "out", runId + ".jsonl")).Select(line => JsonDocument.Parse(line).RootElement.GetProperty("order_id").GetString())];

    private static void Rewrite(TempDirectory dir, string from, string to)
    {
        var spec = File.ReadAllText(dir.File("spec.yaml"));
        Assert.Contains(from, spec, StringComparison.Ordinal);
        File.WriteAllText(dir.File("spec.yaml"), spec.Replace(from, to, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_negative_amount_is_dead_lettered_by_the_source_contract_before_a_filter_could_drop_it()
    {
        using var dir = Fixture();

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        var negative = Assert.Single(DeadLetters(dir), d => d.GetProperty("record").GetProperty("order_id").GetString() == "o-2");
        Assert.Equal("input_contract", negative.GetProperty("stage").GetString());
        Assert.Equal("amount", negative.GetProperty("field").GetString());
        Assert.Equal("below_min", negative.GetProperty("code").GetString());
        Assert.Equal(2, negative.GetProperty("line").GetInt64());
        Assert.Equal(-1, negative.GetProperty("record").GetProperty("amount").GetInt32());
        // Only o-3 (amount 0, which the source's contract allows) is filtered.
        Assert.Equal(1, json.GetProperty("records").GetProperty("filtered").GetInt64());
        Assert.Equal(["o-1", "o-6"], OrderIds(dir));
    }

    [Fact]
    public async Task Without_the_source_contract_the_same_negative_amount_is_silently_filtered()
    {
        using var dir = Fixture();
        Rewrite(dir, "  contract: { schema: orders-in.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5 }\n", "");

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(2, json.GetProperty("records").GetProperty("filtered").GetInt64());
        Assert.DoesNotContain(DeadLetters(dir), d => d.GetProperty("record").GetProperty("order_id").GetString() == "o-2");
        Assert.Contains("bad-4", OrderIds(dir));
    }

    [Fact]
    public async Task A_sink_contract_violation_is_dead_lettered_with_stage_contract()
    {
        using var dir = Fixture();

        var (result, _, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        var dead = DeadLetters(dir);
        var tooLarge = Assert.Single(dead, d => d.GetProperty("stage").GetString() == "contract");
        Assert.Equal("amount_cents", tooLarge.GetProperty("field").GetString());
        Assert.Equal("above_max", tooLarge.GetProperty("code").GetString());
        Assert.Equal("o-5", tooLarge.GetProperty("record").GetProperty("order_id").GetString());
        Assert.Equal(["input_contract", "input_contract", "contract"], dead.Select(d => d.GetProperty("stage").GetString()));
    }

    [Fact]
    public async Task The_top_level_contract_still_checks_what_the_sink_receives()
    {
        using var dir = Fixture();
        Rewrite(dir, "  contract: { schema: orders-in.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5 }\n", "");
        Rewrite(dir, "  contract: { schema: orders-out.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5 }\n", "");
        File.AppendAllText(dir.File("spec.yaml"), "contract: { schema: orders-out.v1.yaml, max_violation_ratio: 0.5 }\n");

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        // amount_cents, which the contract requires, exists only after the map: checked on the
        // input, every record would be missing it.
        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        var dead = Assert.Single(DeadLetters(dir));
        Assert.Equal("contract", dead.GetProperty("stage").GetString());
        Assert.Equal("above_max", dead.GetProperty("code").GetString());
        Assert.Equal(["o-1", "bad-4", "o-6"], OrderIds(dir));
        Assert.Equal(1, json.GetProperty("dead_lettered_by_stage").GetProperty("contract").GetInt64());
        Assert.False(json.GetProperty("dead_lettered_by_stage").TryGetProperty("input_contract", out _));
    }

    [Fact]
    public async Task Totals_count_the_dead_letters_of_both_sides_and_name_each_stage()
    {
        using var dir = Fixture();

        var (_, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        var records = json.GetProperty("records");
        Assert.Equal(6, records.GetProperty("in").GetInt64());
        Assert.Equal(2, records.GetProperty("out").GetInt64());
        Assert.Equal(3, records.GetProperty("dead_lettered").GetInt64());
        Assert.Equal(1, records.GetProperty("filtered").GetInt64());
        Assert.Equal("""{"contract":1,"input_contract":2}""", json.GetProperty("dead_lettered_by_stage").GetRawText());
        Assert.Equal("""{"above_max":1,"below_min":1,"pattern_mismatch":1}""", json.GetProperty("dead_lettered_by_code").GetRawText());
        var stages = json.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(["source", "input_contract", "filter#1", "select#2", "map#3", "contract", "sink"], stages.Select(s => s.GetProperty("name").GetString()));
        Assert.Equal(6, stages[1].GetProperty("records_in").GetInt64());
        Assert.Equal(4, stages[1].GetProperty("records_out").GetInt64());
        Assert.Equal(3, stages[5].GetProperty("records_in").GetInt64());
        Assert.Equal(2, stages[5].GetProperty("records_out").GetInt64());
    }

    /// <summary>Two of six refused before the transforms (33%), three of six dead-lettered in all (50%).</summary>
    [Theory]
    [InlineData("0.34", "1", null)]
    [InlineData("0.3", "1", "2 of 6 records were refused before the transforms (33.33 %), more than source.contract.max_violation_ratio 30.00 %")]
    [InlineData("1", "0.4", "3 of 6 records were dead-lettered (50.00 %), more than sink.contract.max_violation_ratio 40.00 %")]
    [InlineData("1", "0.5", null)]
    public async Task Each_max_violation_ratio_is_judged_on_its_side_and_the_sinks_counts_both(string sourceMax, string sinkMax, string? error)
    {
        using var dir = Fixture();
        Rewrite(dir, "schema: orders-in.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5", $"schema: orders-in.v1.yaml, max_violation_ratio: {sourceMax}");
        Rewrite(dir, "schema: orders-out.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5", $"schema: orders-out.v1.yaml, max_violation_ratio: {sinkMax}");

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(error is null ? RunOutcome.Succeeded : RunOutcome.ContractThresholdExceeded, result.Outcome);
        Assert.Equal(error, json.GetProperty("error").GetString());
        Assert.Equal(error is null, File.Exists(Path.Combine(dir.Path, "out", "contracts-1.jsonl")));
    }

    [Fact]
    public async Task An_unreadable_input_line_counts_against_the_source_contracts_ratio()
    {
        using var dir = Fixture();
        File.AppendAllText(dir.File("orders.jsonl"), "not json\n");
        Rewrite(dir, "schema: orders-in.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5", "schema: orders-in.v1.yaml, max_violation_ratio: 0.4");

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.ContractThresholdExceeded, result.Outcome);
        Assert.StartsWith("3 of 7 records were refused before the transforms", json.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("""{"contract":1,"input_contract":2,"source":1}""", json.GetProperty("dead_lettered_by_stage").GetRawText());
    }

    [Fact]
    public async Task Past_the_source_contracts_ratio_the_process_exits_3_and_publishes_only_the_dead_letters()
    {
        using var dir = Fixture();
        Rewrite(dir, "schema: orders-in.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.5", "schema: orders-in.v1.yaml, max_violation_ratio: 0.1");

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.True(exit == 3, stderr);
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal("contract_threshold_exceeded", result.RootElement.GetProperty("status").GetString());
        Assert.Contains("source.contract.max_violation_ratio", result.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "contracts-1.jsonl")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "contracts-1.jsonl.part")));
        Assert.Equal(3, DeadLetters(dir).Count);
    }

    [Fact]
    public async Task Source_contract_on_violation_fail_stops_the_run_at_the_first_bad_input()
    {
        using var dir = Fixture();
        Rewrite(dir, "schema: orders-in.v1.yaml, on_violation: dead_letter", "schema: orders-in.v1.yaml, on_violation: fail");

        var (result, json, lineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.ContractThresholdExceeded, result.Outcome);
        Assert.Equal("record at offset 68 (line 2) breaks source.contract orders-in v1: field 'amount' is -1, below the minimum 0", json.GetProperty("error").GetString());
        Assert.Equal("FAIL", lineage.Events[^1].Type);
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "contracts-1.jsonl")));
    }

    [Fact]
    public async Task A_csv_source_reads_its_cells_as_the_source_contract_types_them()
    {
        using var dir = new TempDirectory("slice-contracts-csv");
        File.WriteAllText(dir.File("customers.csv"), "id,zip\nc-1,01234\nc-2,98765\nc-3,1234\n");
        File.WriteAllText(dir.File("customers.v1.yaml"), "contract: customers\nversion: 1\nfields:\n  zip: { type: string, required: true, pattern: \"^[0-9]{5}$\" }\n");
        File.WriteAllText(dir.File("spec.yaml"), $$"""
            slice: v1
            run: { id: csv-1, job: { namespace: acme.crm, name: customers } }
            source: { type: csv, path: "{{dir.File("customers.csv")}}", contract: { schema: customers.v1.yaml, max_violation_ratio: 0.5 } }
            sink: { type: jsonl, path: "{{dir.Path}}/out/{run_id}.jsonl" }
            dead_letter: { type: jsonl, path: "{{dir.Path}}/dlq/{run_id}.jsonl" }
            """);

        var (result, _, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        // Typed by the contract, "01234" stays text with its leading zero, and "1234" breaks the
        // pattern; untyped, both would read as integers and break the type.
        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(["""{"id":"c-1","zip":"01234"}""", """{"id":"c-2","zip":"98765"}"""], File.ReadAllLines(Path.Combine(dir.Path, "out", "csv-1.jsonl")));
        var dead = Assert.Single(DeadLetters(dir, "csv-1"));
        Assert.Equal("input_contract", dead.GetProperty("stage").GetString());
        Assert.Equal("pattern_mismatch", dead.GetProperty("code").GetString());
        Assert.Equal("c-3,1234", dead.GetProperty("raw").GetString());
    }
}
