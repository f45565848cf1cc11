using Runner.Slice.Specs;
using Xunit;

namespace Runner.Slice.Tests.Specs;

public sealed class SpecParserTests
{
    private const string Full = """
        slice: v1
        run: { id: 0192f1e6-run, job: { namespace: acme.orders, name: normalize },
               parent: { run_id: parent-1, job: { namespace: acme, name: pipeline-run } } }
        source: { type: jsonl, path: /data/in/orders.jsonl }
        contract: { schema: contracts/orders.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.01 }
        transforms:
          - { type: filter, where: "amount > 0" }
          - { type: select, fields: [order_id, customer_id, amount, ts] }
          - { type: map, set: { amount_cents: "amount * 100" } }
        sink: { type: jsonl, path: "/data/out/orders-{run_id}.jsonl" }
        dead_letter: { type: jsonl, path: "/data/dlq/{run_id}.jsonl" }
        batch: { max_records: 4096, max_wait_ms: 200 }
        checkpoint: { path: "/state/{job}.ckpt", every_batches: 16 }
        """;

    [Fact]
    public void The_issue_example_parses_into_every_part()
    {
        var result = SpecParser.Parse(Full, "spec.yaml");

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        var spec = result.Spec!;
        Assert.Equal("0192f1e6-run", spec.Run.Id);
        Assert.Equal(new JobRef("acme.orders", "normalize"), spec.Run.Job);
        Assert.Equal("parent-1", spec.Run.ParentRunId);
        Assert.Equal(new JobRef("acme", "pipeline-run"), spec.Run.ParentJob);
        Assert.Equal(new Endpoint("jsonl", "/data/in/orders.jsonl", null, null, 0), spec.Source);
        // The top-level contract is the sink's, in short.
        Assert.Equal(new ContractRef("contracts/orders.v1.yaml", "dead_letter", 0.01) { Key = "contract", Line = 5, Column = 11 }, spec.Sink.Contract);
        Assert.Null(spec.Source.Contract);
        Assert.Equal(["filter", "select", "map"], spec.Transforms.Select(t => t.Type));
        Assert.Equal("amount > 0", spec.Transforms[0].Where);
        Assert.Equal(["order_id", "customer_id", "amount", "ts"], spec.Transforms[1].Fields);
        Assert.Equal([new KeyValuePair<string, string>("amount_cents", "amount * 100")], spec.Transforms[2].Set);
        Assert.Equal("/data/out/orders-0192f1e6-run.jsonl", spec.Expand(spec.Sink.Path!));
        Assert.Equal("/state/normalize.ckpt", spec.Expand(spec.Checkpoint!.Path));
        Assert.Equal(new BatchSpec(4096, 200), spec.Batch);
        Assert.Equal(16, spec.Checkpoint.EveryBatches);
    }

    [Fact]
    public void The_same_spec_in_json_parses_too()
    {
        const string Json = """
            {"slice":"v1","run":{"id":"r1","job":{"namespace":"n","name":"j"}},
             "source":{"type":"csv","path":"in.csv"},"sink":{"type":"jetstream","subject":"pipeline.acme.out","start_seq":5}}
            """;

        var result = SpecParser.Parse(Json, "spec.json");

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Equal("csv", result.Spec!.Source.Type);
        Assert.Equal("pipeline.acme.out", result.Spec.Sink.Subject);
        Assert.Equal(BatchSpec.Default, result.Spec.Batch);
        Assert.Empty(result.Spec.Transforms);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_with_its_line()
    {
        const string Bad = """
            slice: v2
            run: { id: "has space", job: { namespace: n } }
            source: { type: parquet, path: x }
            contract: { schema: c.yaml, on_violation: shrug, max_violation_ratio: 2 }
            transforms:
              - { type: filter }
              - { type: select, fields: [a, a] }
              - { type: map, set: {} }
              - { type: explode }
            sink: { type: jsonl, subject: nope }
            batch: { max_records: 0, sideways: true }
            """;

        var result = SpecParser.Parse(Bad, "bad.yaml");

        Assert.False(result.Succeeded);
        var messages = result.Errors.Select(e => $"{e.Line}: {e.Message}").ToList();
        Assert.Contains(messages, m => m.StartsWith("1: ", StringComparison.Ordinal) && m.Contains("'v2' is not a known spec version", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("2: ", StringComparison.Ordinal) && m.Contains("run.id must be", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("2: ", StringComparison.Ordinal) && m.Contains("missing 'name'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("3: ", StringComparison.Ordinal) && m.Contains("source.type 'parquet'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("4: ", StringComparison.Ordinal) && m.Contains("on_violation 'shrug'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("4: ", StringComparison.Ordinal) && m.Contains("max_violation_ratio must be a number in [0, 1]", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("6: ", StringComparison.Ordinal) && m.Contains("filter: missing 'where'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("7: ", StringComparison.Ordinal) && m.Contains("'a' is listed more than once", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("8: ", StringComparison.Ordinal) && m.Contains("map.set must be a non-empty mapping", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("9: ", StringComparison.Ordinal) && m.Contains("transform type 'explode'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("10: ", StringComparison.Ordinal) && m.Contains("sink: missing 'path'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("10: ", StringComparison.Ordinal) && m.Contains("has a 'path', not a 'subject'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("11: ", StringComparison.Ordinal) && m.Contains("batch.max_records must be an integer", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("11: ", StringComparison.Ordinal) && m.Contains("unknown field 'sideways'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("on_violation is dead_letter", StringComparison.Ordinal) || m.Contains("on_violation 'shrug'", StringComparison.Ordinal));
    }

    [Fact]
    public void Dead_letter_violations_need_a_dead_letter_output()
    {
        var spec = Full.Replace("dead_letter: { type: jsonl, path: \"/data/dlq/{run_id}.jsonl\" }\n", "", StringComparison.Ordinal);

        var result = SpecParser.Parse(spec, "spec.yaml");

        Assert.Contains(result.Errors, e => e.Message.Contains("no 'dead_letter' output", StringComparison.Ordinal));
    }

    private const string BothSides = """
        slice: v1
        run: { id: r, job: { namespace: n, name: j } }
        source:
          type: jsonl
          path: in.jsonl
          contract: { schema: in.yaml, on_violation: fail, max_violation_ratio: 0.02 }
        sink:
          type: jsonl
          path: out.jsonl
          contract: { schema: out.yaml, max_violation_ratio: 0.1 }
        dead_letter: { type: jsonl, path: dlq.jsonl }
        """;

    [Fact]
    public void Source_and_sink_contracts_sit_on_their_endpoints()
    {
        var result = SpecParser.Parse(BothSides, "spec.yaml");

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Equal(new ContractRef("in.yaml", "fail", 0.02) { Key = "source.contract", Line = 6, Column = 13 }, result.Spec!.Source.Contract);
        Assert.Equal(new ContractRef("out.yaml", "dead_letter", 0.1) { Key = "sink.contract", Line = 10, Column = 13 }, result.Spec.Sink.Contract);
        Assert.Null(result.Spec.DeadLetter!.Contract);
    }

    [Fact]
    public void Contract_and_sink_contract_together_are_an_error_that_says_the_first_is_shorthand()
    {
        var result = SpecParser.Parse(BothSides + "\ncontract: { schema: out.yaml }\n", "spec.yaml");

        Assert.False(result.Succeeded);
        var error = Assert.Single(result.Errors);
        Assert.Equal(12, error.Line);
        Assert.Equal("'contract' and 'sink.contract' (line 10) are both given: the top-level 'contract' is shorthand for 'sink.contract'; declare the sink's contract once", error.Message);
    }

    [Fact]
    public void Contract_problems_name_the_side_they_are_on()
    {
        var spec = BothSides
            .Replace("on_violation: fail", "on_violation: drop", StringComparison.Ordinal)
            .Replace("dead_letter: { type: jsonl, path: dlq.jsonl }", "dead_letter: { type: jsonl, path: dlq.jsonl, contract: { schema: x.yaml } }", StringComparison.Ordinal)
            .Replace("max_violation_ratio: 0.1", "max_violation_ratio: 1.5", StringComparison.Ordinal);

        var result = SpecParser.Parse(spec, "spec.yaml");

        var messages = result.Errors.Select(e => $"{e.Line}: {e.Message}").ToList();
        Assert.Contains("6: source.contract.on_violation 'drop' is not one of dead_letter, fail", messages);
        Assert.Contains("10: sink.contract.max_violation_ratio must be a number in [0, 1]", messages);
        Assert.Contains("11: dead_letter: unknown field 'contract'", messages);
        Assert.Equal(3, messages.Count);
    }

    [Fact]
    public void A_source_contract_that_dead_letters_needs_a_dead_letter_output()
    {
        var spec = BothSides
            .Replace("on_violation: fail", "on_violation: dead_letter", StringComparison.Ordinal)
            .Replace("contract: { schema: out.yaml, max_violation_ratio: 0.1 }", "contract: { schema: out.yaml, on_violation: fail }", StringComparison.Ordinal)
            .Replace("dead_letter: { type: jsonl, path: dlq.jsonl }", "", StringComparison.Ordinal);

        var result = SpecParser.Parse(spec, "spec.yaml");

        var error = Assert.Single(result.Errors);
        Assert.Equal(6, error.Line);
        Assert.Equal("source.contract.on_violation is dead_letter but the spec has no 'dead_letter' output", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("- a\n- b")]
    [InlineData("slice: v1\n  bad: [indent")]
    public void Text_that_is_not_one_mapping_is_an_error_not_a_crash(string text)
    {
        var result = SpecParser.Parse(text, "x.yaml");

        Assert.False(result.Succeeded);
        Assert.NotEmpty(result.Errors);
    }

    [Fact]
    public void Expressions_are_compiled_when_the_spec_is_checked_and_their_errors_carry_the_line()
    {
        const string Bad = """
            slice: v1
            run: { id: r, job: { namespace: n, name: j } }
            source: { type: jsonl, path: in.jsonl }
            transforms:
              - { type: filter, where: "amount > " }
              - { type: map, set: { cents: "amount * 100", label: "upper(name, 1)" } }
              - { type: filter, where: "'a' * 2" }
            sink: { type: jsonl, path: out.jsonl }
            """;

        var result = SpecParser.Parse(Bad, "bad.yaml");

        Assert.False(result.Succeeded);
        Assert.Equal([5, 6, 7], result.Errors.Select(e => e.Line).Order());
        Assert.Contains(result.Errors, e => e.Line == 5 && e.Message.StartsWith("filter.where: 'amount > ': column", StringComparison.Ordinal));
        Assert.Contains(result.Errors, e => e.Line == 6 && e.Message.StartsWith("map.set.label:", StringComparison.Ordinal));
    }
}
