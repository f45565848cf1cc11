using Runner.Slice.Contracts;
using Xunit;

namespace Runner.Slice.Tests.Specs;

public sealed class ContractParserTests
{
    private const string Orders = """
        contract: orders
        version: 1
        fields:
          order_id: { type: string, required: true, pattern: "^o-[0-9]+$" }
          amount:   { type: number, required: true, min: 0 }
          status:   { type: string, enum: [new, paid, shipped] }
          ts:       { type: timestamp }
          qty:      { type: int, nullable: false, max: 1000 }
          note:     { type: string, max_length: 140 }
        """;

    [Fact]
    public void The_issue_example_contract_parses_with_every_rule()
    {
        var result = ContractParser.Parse(Orders, "orders.v1.yaml");

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        var contract = result.Contract!;
        Assert.Equal("orders", contract.Name);
        Assert.Equal(1, contract.Version);
        Assert.Equal(["order_id", "amount", "status", "ts", "qty", "note"], contract.Fields.Select(f => f.Name));
        var orderId = contract.Fields[0];
        Assert.True(orderId.Required);
        Assert.Matches(orderId.Pattern!, "o-123");
        Assert.DoesNotMatch(orderId.Pattern!, "x-1");
        Assert.Equal(0, contract.Fields[1].Min);
        Assert.Equal(["new", "paid", "shipped"], contract.Fields[2].Enum!);
        Assert.Equal(FieldType.Timestamp, contract.Fields[3].Type);
        Assert.False(contract.Fields[4].Nullable);
        Assert.Equal(1000, contract.Fields[4].Max);
        Assert.Equal(140, contract.Fields[5].MaxLength);
        Assert.Matches("^[0-9a-f]{64}$", contract.ContentHash);
    }

    [Fact]
    public void The_content_hash_changes_with_the_text_and_only_with_it()
    {
        var a = ContractParser.Parse(Orders, "a.yaml").Contract!;
        var b = ContractParser.Parse(Orders, "b.yaml").Contract!;
        var c = ContractParser.Parse(Orders.Replace("max: 1000", "max: 999", StringComparison.Ordinal), "c.yaml").Contract!;

        Assert.Equal(a.ContentHash, b.ContentHash);
        Assert.NotEqual(a.ContentHash, c.ContentHash);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_with_its_line()
    {
        const string Bad = """
            contract: orders
            fields:
              a: { type: decimal }
              b: { type: string, min: 3 }
              c: { type: number, min: 5, max: 1 }
              d: { type: string, pattern: "([" }
              e: { type: int, max_length: 3, colour: red }
              f: { type: string, enum: [] }
            """;

        var result = ContractParser.Parse(Bad, "bad.yaml");

        Assert.False(result.Succeeded);
        var messages = result.Errors.Select(e => $"{e.Line}: {e.Message}").ToList();
        Assert.Contains(messages, m => m.Contains("missing 'version'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("3: ", StringComparison.Ordinal) && m.Contains("type 'decimal'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("4: ", StringComparison.Ordinal) && m.Contains("min and max apply to int and number", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("5: ", StringComparison.Ordinal) && m.Contains("min 5 is greater than max 1", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("6: ", StringComparison.Ordinal) && m.Contains("not a valid regular expression", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("7: ", StringComparison.Ordinal) && m.Contains("max_length applies to string", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("7: ", StringComparison.Ordinal) && m.Contains("unknown field 'colour'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("8: ", StringComparison.Ordinal) && m.Contains("enum must be a non-empty list", StringComparison.Ordinal));
    }
}
