using System.Text;
using System.Text.Json;
using Runner.Slice.Engine;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>Bad input is dead-lettered with its reason and never crashes a run; good records around it flow on.</summary>
public sealed class MalformedInputTests
{
    private static string Spec(TempDirectory dir, string type, string input, string extra = "") => $$"""
        slice: v1
        run: { id: bad-input, job: { namespace: acme, name: malformed } }
        source: { type: {{type}}, path: "{{dir.File(input)}}" }
        sink: { type: jsonl, path: "{{dir.File("out.jsonl")}}" }
        dead_letter: { type: jsonl, path: "{{dir.File("dead.jsonl")}}" }
        {{extra}}
        """;

    private static List<JsonElement> Lines(string path) =>
        [.. File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    [Fact]
    public async Task Broken_json_lines_are_dead_lettered_with_their_text_and_the_rest_flows()
    {
        using var dir = new TempDirectory("slice-bad");
        File.WriteAllText(dir.File("in.jsonl"), "{\"id\":1}\n{\"id\":2,\n{\"id\":3} trailing\n\"just a string\"\n{\"id\":4}\n");
        File.WriteAllText(dir.File("spec.yaml"), Spec(dir, "jsonl", "in.jsonl"));

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(["{\"id\":1}", "{\"id\":4}"], File.ReadAllLines(dir.File("out.jsonl")));
        var dead = Lines(dir.File("dead.jsonl"));
        Assert.Equal(["malformed_json", "malformed_json", "not_an_object"], dead.Select(d => d.GetProperty("code").GetString()));
        Assert.Equal([2L, 3L, 4L], dead.Select(d => d.GetProperty("line").GetInt64()));
        Assert.Equal("{\"id\":2,", dead[0].GetProperty("raw").GetString());
        Assert.Equal(9L, dead[0].GetProperty("offset").GetInt64());
        Assert.All(dead, d => Assert.Equal("source", d.GetProperty("stage").GetString()));
        Assert.Equal(5, json.GetProperty("records").GetProperty("in").GetInt64());
    }

    [Fact]
    public async Task Invalid_utf8_is_dead_lettered_not_decoded()
    {
        using var dir = new TempDirectory("slice-bad");
        var bytes = new List<byte>();
        bytes.AddRange("{\"id\":1}\n{\"name\":\""u8.ToArray());
        bytes.AddRange([0xC3, 0x28, 0xFF]);
        bytes.AddRange("\"}\n{\"id\":3}\n"u8.ToArray());
        File.WriteAllBytes(dir.File("in.jsonl"), [.. bytes]);
        File.WriteAllText(dir.File("spec.yaml"), Spec(dir, "jsonl", "in.jsonl"));

        var (result, _, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(["{\"id\":1}", "{\"id\":3}"], File.ReadAllLines(dir.File("out.jsonl")));
        var dead = Assert.Single(Lines(dir.File("dead.jsonl")));
        Assert.Equal("invalid_utf8", dead.GetProperty("code").GetString());
        Assert.Equal(2, dead.GetProperty("line").GetInt64());
    }

    [Fact]
    public async Task A_huge_line_is_dead_lettered_with_its_start_and_the_next_line_is_read()
    {
        using var dir = new TempDirectory("slice-bad");
        var huge = "{\"blob\":\"" + new string('x', 3 * 1024 * 1024) + "\"}";
        File.WriteAllText(dir.File("in.jsonl"), "{\"id\":1}\n" + huge + "\n{\"id\":3}\n");
        File.WriteAllText(dir.File("spec.yaml"), Spec(dir, "jsonl", "in.jsonl"));

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"), new RunOptions { MaxLineBytes = 1024 * 1024 });

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(["{\"id\":1}", "{\"id\":3}"], File.ReadAllLines(dir.File("out.jsonl")));
        var dead = Assert.Single(Lines(dir.File("dead.jsonl")));
        Assert.Equal("line_too_long", dead.GetProperty("code").GetString());
        Assert.True(dead.GetProperty("truncated").GetBoolean());
        Assert.StartsWith("{\"blob\":\"xxx", dead.GetProperty("raw").GetString());
        Assert.True(dead.GetProperty("raw").GetString()!.Length <= 1024);
        Assert.Equal(9 + huge.Length + 1 + 9, json.GetProperty("bytes").GetProperty("in").GetInt64());
    }

    [Fact]
    public async Task Csv_rows_with_the_wrong_column_count_or_stray_quotes_are_dead_lettered()
    {
        using var dir = new TempDirectory("slice-bad");
        File.WriteAllText(dir.File("in.csv"), "a,b,c\n1,2,3\n4,5\n6,7,8,9\n1,x\"y,3\n\"open,2,3\n10,11,12\n");
        File.WriteAllText(dir.File("spec.yaml"), Spec(dir, "csv", "in.csv"));

        var (result, _, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(["{\"a\":1,\"b\":2,\"c\":3}", "{\"a\":10,\"b\":11,\"c\":12}"], File.ReadAllLines(dir.File("out.jsonl")));
        var dead = Lines(dir.File("dead.jsonl"));
        Assert.Equal(["column_count", "column_count", "malformed_csv"], dead.Select(d => d.GetProperty("code").GetString()));
        Assert.Equal("4,5", dead[0].GetProperty("raw").GetString());
        // A stray quote opens a quoted run up to the next quote: both lines are one malformed record.
        Assert.Equal("1,x\"y,3\n\"open,2,3", dead[2].GetProperty("raw").GetString());
        Assert.Equal(5, dead[2].GetProperty("line").GetInt64());
    }

    [Fact]
    public async Task A_spec_with_errors_runs_nothing_and_reports_every_error()
    {
        using var dir = new TempDirectory("slice-bad");
        File.WriteAllText(dir.File("spec.yaml"), """
            slice: v1
            run: { id: x, job: { namespace: a, name: b } }
            source: { type: parquet, path: /nowhere }
            transforms:
              - { type: filter, where: "amount >" }
            sink: { type: jsonl }
            surprise: true
            """);

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.Equal(2, exit);
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal("invalid_spec", result.RootElement.GetProperty("status").GetString());
        var errors = result.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Contains(errors, e => e.Contains("parquet", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("surprise", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("filter.where", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("sink", StringComparison.Ordinal) && e.Contains("path", StringComparison.Ordinal));
        Assert.Contains("surprise", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Records_later_than_the_watermark_allows_are_dead_lettered_as_late()
    {
        using var dir = new TempDirectory("slice-late");
        File.WriteAllText(dir.File("in.jsonl"), """
            {"id":1,"ts":"2026-01-01T00:10:00Z"}
            {"id":2,"ts":"2026-01-01T00:09:30Z"}
            {"id":3,"ts":"2026-01-01T00:20:00Z"}
            {"id":4,"ts":"2026-01-01T00:18:59Z"}
            {"id":5,"ts":"2026-01-01T00:19:30Z"}
            {"id":6}
            """);
        File.WriteAllText(dir.File("spec.yaml"), Spec(dir, "jsonl", "in.jsonl", "event_time: { field: ts, allowed_lateness_ms: 60000 }"));

        var (result, _, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal([1, 2, 3, 5, 6], File.ReadAllLines(dir.File("out.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt32()));
        var dead = Assert.Single(Lines(dir.File("dead.jsonl")));
        Assert.Equal("late_event", dead.GetProperty("code").GetString());
        Assert.Equal("ts", dead.GetProperty("field").GetString());
        Assert.Equal(4, dead.GetProperty("record").GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task Without_a_dead_letter_output_refused_records_are_written_to_stderr_not_dropped()
    {
        using var dir = new TempDirectory("slice-bad");
        File.WriteAllText(dir.File("in.jsonl"), "{\"id\":1}\nnot json\n{\"id\":3}\n");
        File.WriteAllText(dir.File("spec.yaml"), $$"""
            slice: v1
            run: { id: no-dlq, job: { namespace: acme, name: malformed } }
            source: { type: jsonl, path: "{{dir.File("in.jsonl")}}" }
            sink: { type: jsonl, path: "{{dir.File("out.jsonl")}}" }
            """);

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.Equal(0, exit);
        Assert.Equal(["{\"id\":1}", "{\"id\":3}"], File.ReadAllLines(dir.File("out.jsonl")));
        var line = Assert.Single(stderr.Split('\n'), l => l.StartsWith("dead letter", StringComparison.Ordinal));
        using var dead = JsonDocument.Parse(line[(line.IndexOf('{', StringComparison.Ordinal))..]);
        Assert.Equal("malformed_json", dead.RootElement.GetProperty("code").GetString());
        Assert.Equal("not json", dead.RootElement.GetProperty("raw").GetString());
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal(1, result.RootElement.GetProperty("records").GetProperty("dead_lettered").GetInt64());
    }
}
