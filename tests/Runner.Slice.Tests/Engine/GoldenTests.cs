using Runner.Slice.Engine;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>Specs over fixture input produce exactly the expected output and dead-letter files.</summary>
public sealed class GoldenTests
{
    [Fact]
    public async Task Jsonl_orders_produce_the_expected_output_and_dead_letters()
    {
        using var dir = new TempDirectory("slice-golden");
        SliceTestKit.CopyFixtures("golden", dir);

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(File.ReadAllText(SliceTestKit.Fixture("golden/expected-out.jsonl")), File.ReadAllText(Path.Combine(dir.Path, "out", "orders-golden-1.jsonl")));
        Assert.Equal(File.ReadAllText(SliceTestKit.Fixture("golden/expected-dead.jsonl")), File.ReadAllText(Path.Combine(dir.Path, "dlq", "golden-1.jsonl")));
        var records = json.GetProperty("records");
        Assert.Equal(10, records.GetProperty("in").GetInt64());
        Assert.Equal(4, records.GetProperty("out").GetInt64());
        Assert.Equal(4, records.GetProperty("dead_lettered").GetInt64());
        Assert.Equal(2, records.GetProperty("filtered").GetInt64());
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "orders-golden-1.jsonl.part")));
    }

    [Fact]
    public async Task Csv_orders_with_quotes_commas_and_line_breaks_produce_the_expected_csv()
    {
        using var dir = new TempDirectory("slice-golden");
        SliceTestKit.CopyFixtures("golden", dir);

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec-csv.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(File.ReadAllText(SliceTestKit.Fixture("golden/expected-out.csv")), File.ReadAllText(Path.Combine(dir.Path, "out", "orders-golden-csv.csv")));
        Assert.Equal(File.ReadAllText(SliceTestKit.Fixture("golden/expected-dead-csv.jsonl")), File.ReadAllText(Path.Combine(dir.Path, "dlq", "golden-csv.jsonl")));
        Assert.Equal(1, json.GetProperty("dead_lettered_by_code").GetProperty("column_count").GetInt64());
    }

    [Fact]
    public async Task The_process_prints_the_result_and_exits_0_with_the_same_files()
    {
        using var dir = new TempDirectory("slice-golden");
        SliceTestKit.CopyFixtures("golden", dir);

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.True(exit == 0, stderr);
        using var result = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal("succeeded", result.RootElement.GetProperty("status").GetString());
        Assert.Equal(File.ReadAllText(SliceTestKit.Fixture("golden/expected-out.jsonl")), File.ReadAllText(Path.Combine(dir.Path, "out", "orders-golden-1.jsonl")));
    }
}
