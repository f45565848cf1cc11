using Xunit;

namespace Runner.Slice.Tests;

public sealed class ValidateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("runner-slice-validate").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private const string Spec = """
        slice: v1
        run: { id: r-1, job: { namespace: acme.orders, name: normalize } }
        source: { type: jsonl, path: in.jsonl }
        contract: { schema: contracts/orders.yaml, max_violation_ratio: 0.1 }
        transforms: [ { type: filter, where: "amount > 0" } ]
        sink: { type: jsonl, path: "out-{run_id}.jsonl" }
        dead_letter: { type: jsonl, path: "dlq-{run_id}.jsonl" }
        """;

    [Fact]
    public void A_valid_spec_with_its_contract_next_to_it_is_described()
    {
        Write("contracts/orders.yaml", "contract: orders\nversion: 2\nfields:\n  amount: { type: number }\n");
        var spec = Write("spec.yaml", Spec);
        using var output = new StringWriter();
        using var errors = new StringWriter();

        var exit = ValidateCommand.Run(spec, output, errors);

        Assert.Equal(0, exit);
        Assert.Contains("ok: run r-1 of acme.orders/normalize", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("sink jsonl out-r-1.jsonl", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("contract orders v2", output.ToString(), StringComparison.Ordinal);
        Assert.Empty(errors.ToString());
    }

    [Fact]
    public void A_missing_contract_and_a_bad_contract_fail_validation()
    {
        var spec = Write("spec.yaml", Spec);
        using var output = new StringWriter();
        using var errors = new StringWriter();

        Assert.Equal(1, ValidateCommand.Run(spec, output, errors));
        Assert.Contains("contracts/orders.yaml' not found", errors.ToString(), StringComparison.Ordinal);

        Write("contracts/orders.yaml", "contract: orders\nversion: 1\nfields:\n  amount: { type: money }\n");
        using var errors2 = new StringWriter();
        Assert.Equal(1, ValidateCommand.Run(spec, output, errors2));
        Assert.Contains("type 'money'", errors2.ToString(), StringComparison.Ordinal);
    }

    private const string BothSides = """
        slice: v1
        run: { id: r-2, job: { namespace: acme.orders, name: normalize } }
        source:
          type: jsonl
          path: in.jsonl
          contract: { schema: contracts/orders-in.yaml, max_violation_ratio: 0.02 }
        transforms: [ { type: filter, where: "amount > 0" } ]
        sink:
          type: jsonl
          path: "out-{run_id}.jsonl"
          contract: { schema: contracts/orders-out.yaml, on_violation: fail }
        dead_letter: { type: jsonl, path: "dlq-{run_id}.jsonl" }
        """;

    [Fact]
    public void A_spec_with_contracts_on_both_sides_describes_each_with_what_it_checks()
    {
        Write("contracts/orders-in.yaml", "contract: orders-in\nversion: 1\nfields:\n  amount: { type: number, min: 0 }\n");
        Write("contracts/orders-out.yaml", "contract: orders-out\nversion: 3\nfields:\n  amount: { type: number, min: 1 }\n");
        var spec = Write("spec.yaml", BothSides);
        using var output = new StringWriter();
        using var errors = new StringWriter();

        var exit = ValidateCommand.Run(spec, output, errors);

        Assert.True(exit == 0, errors.ToString());
        var lines = output.ToString().Split('\n');
        Assert.Contains(lines, l => l.StartsWith("  source.contract orders-in v1 (1 fields", StringComparison.Ordinal)
            && l.Contains("checks every record the source reads, before any transform; on violation dead_letter; at most 2.00 % of the records read refused before the transforms", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  sink.contract orders-out v3 (1 fields", StringComparison.Ordinal)
            && l.Contains("checks every record the sink receives; on violation fail", StringComparison.Ordinal));
    }

    [Fact]
    public void Each_sides_contract_file_is_resolved_and_checked_and_problems_name_the_side()
    {
        Write("contracts/orders-out.yaml", "contract: orders-out\nversion: 1\nfields:\n  amount: { type: money }\n");
        var spec = Write("spec.yaml", BothSides);
        using var output = new StringWriter();
        using var errors = new StringWriter();

        Assert.Equal(1, ValidateCommand.Run(spec, output, errors));

        var text = errors.ToString();
        Assert.Contains($"{spec}:6:13: source.contract.schema 'contracts/orders-in.yaml' not found at {Path.Combine(_dir, "contracts", "orders-in.yaml")}", text, StringComparison.Ordinal);
        Assert.Contains("orders-out.yaml:4:", text, StringComparison.Ordinal);
        Assert.Contains("type 'money'", text, StringComparison.Ordinal);
        Assert.Contains("invalid: 2 problem(s)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Contract_and_sink_contract_together_fail_validation_with_a_clear_error()
    {
        Write("contracts/orders-in.yaml", "contract: orders-in\nversion: 1\nfields:\n  amount: { type: number, min: 0 }\n");
        Write("contracts/orders-out.yaml", "contract: orders-out\nversion: 1\nfields:\n  amount: { type: number }\n");
        var spec = Write("spec.yaml", BothSides + "\ncontract: { schema: contracts/orders-out.yaml }\n");
        using var output = new StringWriter();
        using var errors = new StringWriter();

        Assert.Equal(1, ValidateCommand.Run(spec, output, errors));

        Assert.Contains($"{spec}:13:11: 'contract' and 'sink.contract' (line 11) are both given: the top-level 'contract' is shorthand for 'sink.contract'; declare the sink's contract once", errors.ToString(), StringComparison.Ordinal);
        Assert.Empty(output.ToString());
    }

    [Fact]
    public async Task The_process_refuses_to_run_a_spec_with_both_contract_and_sink_contract()
    {
        Write("contracts/orders-in.yaml", "contract: orders-in\nversion: 1\nfields:\n  amount: { type: number, min: 0 }\n");
        Write("contracts/orders-out.yaml", "contract: orders-out\nversion: 1\nfields:\n  amount: { type: number }\n");
        Write("in.jsonl", "{\"amount\":1}\n");
        var spec = Write("spec.yaml", BothSides + "\ncontract: { schema: contracts/orders-out.yaml }\n");

        var (exit, stdout, _) = await Engine.SliceTestKit.RunProcessAsync(["run", spec]);

        Assert.Equal(2, exit);
        using var result = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal("invalid_spec", result.RootElement.GetProperty("status").GetString());
        Assert.Contains(result.RootElement.GetProperty("errors").EnumerateArray(), e => e.GetString()!.Contains("are both given", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(_dir, "out-r-2.jsonl")));
    }

    [Fact]
    public void A_missing_spec_file_is_a_clear_error()
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();

        Assert.Equal(1, ValidateCommand.Run(Path.Combine(_dir, "nope.yaml"), output, errors));
        Assert.Contains("spec file not found", errors.ToString(), StringComparison.Ordinal);
    }
}
