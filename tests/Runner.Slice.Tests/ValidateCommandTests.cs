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

    [Fact]
    public void A_missing_spec_file_is_a_clear_error()
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();

        Assert.Equal(1, ValidateCommand.Run(Path.Combine(_dir, "nope.yaml"), output, errors));
        Assert.Contains("spec file not found", errors.ToString(), StringComparison.Ordinal);
    }
}
