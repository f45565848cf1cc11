using Runner.Slice.Contracts;
using Runner.Slice.Expressions;
using Xunit;

namespace Runner.Slice.Tests.Contracts;

public sealed class ContractValidatorTests
{
    private const string Orders = """
        contract: orders
        version: 1
        fields:
          order_id: { type: string, required: true, pattern: "^o-[0-9]+$" }
          amount:   { type: number, required: true, min: 0, max: 10000 }
          status:   { type: string, enum: [new, paid, shipped] }
          ts:       { type: timestamp }
          qty:      { type: int, nullable: false }
          note:     { type: string, max_length: 5 }
          paid:     { type: bool }
        """;

    private static readonly string[] s_slots = ["order_id", "amount", "status", "ts", "qty", "note", "paid"];

    /// <summary>A record as a name → value map; a name that is absent is a missing field, a Null value an explicit null.</summary>
    private sealed class MapRecord(Dictionary<string, Value> values) : IRecord
    {
        public Value Get(int slot) => values.GetValueOrDefault(s_slots[slot]);

        public bool Has(int slot) => values.ContainsKey(s_slots[slot]);
    }

    private static ContractValidator Validator()
    {
        var contract = ContractParser.Parse(Orders, "orders.yaml").Contract!;
        return ContractValidator.Compile(contract, name => Array.IndexOf(s_slots, name) is var i and >= 0 ? i : null);
    }

    private static Dictionary<string, Value> Good() => new()
    {
        ["order_id"] = Value.FromString("o-17"),
        ["amount"] = Value.FromDouble(12.5),
        ["status"] = Value.FromString("paid"),
        ["ts"] = Value.FromString("2026-11-23T10:00:00Z"),
        ["qty"] = Value.FromInteger(3),
        ["note"] = Value.FromString("hi"),
        ["paid"] = Value.True,
    };

    [Fact]
    public void A_record_that_keeps_every_rule_has_no_violation()
    {
        var violations = new List<Violation>();

        Assert.True(Validator().Validate(new MapRecord(Good()), violations));
        Assert.Empty(violations);
    }

    [Fact]
    public void Optional_fields_may_be_missing_or_null_when_nullable()
    {
        var record = Good();
        record.Remove("status");
        record.Remove("qty");
        record["note"] = Value.Null;

        var violations = new List<Violation>();
        Assert.True(Validator().Validate(new MapRecord(record), violations), string.Join("; ", violations));
    }

    [Fact]
    public void Every_broken_rule_is_reported_with_its_field_and_code()
    {
        var record = new Dictionary<string, Value>
        {
            ["order_id"] = Value.FromString("x-1"),
            ["status"] = Value.FromString("lost"),
            ["ts"] = Value.FromString("yesterday"),
            ["qty"] = Value.Null,
            ["note"] = Value.FromString("far too long"),
            ["paid"] = Value.FromString("yes"),
        };
        var violations = new List<Violation>();

        Assert.False(Validator().Validate(new MapRecord(record), violations));

        Assert.Equal(
            [("amount", ViolationCodes.MissingField), ("note", ViolationCodes.TooLong), ("order_id", ViolationCodes.PatternMismatch),
             ("paid", ViolationCodes.TypeMismatch), ("qty", ViolationCodes.NullNotAllowed), ("status", ViolationCodes.NotInEnum), ("ts", ViolationCodes.TypeMismatch)],
            violations.Select(v => (v.Field, v.Code)).Order());
        Assert.Contains(violations, v => v.Message == "field 'status' is 'lost', not one of new, paid, shipped");
    }

    [Theory]
    [InlineData(-1.0, ViolationCodes.BelowMin)]
    [InlineData(10000.5, ViolationCodes.AboveMax)]
    public void Numbers_outside_their_range_are_violations(double amount, string code)
    {
        var record = Good();
        record["amount"] = Value.FromDouble(amount);
        var violations = new List<Violation>();

        Assert.False(Validator().Validate(new MapRecord(record), violations));
        Assert.Equal(code, Assert.Single(violations).Code);
    }

    [Fact]
    public void An_int_field_takes_whole_numbers_only_and_a_required_null_is_a_violation()
    {
        var record = Good();
        record["qty"] = Value.FromDouble(2.5);
        record["order_id"] = Value.Null;
        var violations = new List<Violation>();

        Assert.False(Validator().Validate(new MapRecord(record), violations));
        Assert.Equal([("order_id", ViolationCodes.NullNotAllowed), ("qty", ViolationCodes.TypeMismatch)], violations.Select(v => (v.Field, v.Code)).Order());
        record["qty"] = Value.FromDouble(4.0);
        record["order_id"] = Value.FromString("o-1");
        Assert.True(Validator().Validate(new MapRecord(record), violations = []), string.Join("; ", violations));
    }

    [Fact]
    public void A_pathological_pattern_times_out_as_a_violation_instead_of_stalling()
    {
        var contract = ContractParser.Parse("contract: c\nversion: 1\nfields:\n  s: { type: string, pattern: \"^(a+)+$\" }\n", "c.yaml").Contract!;
        var validator = ContractValidator.Compile(contract, _ => 0);
        var record = new SingleField(Value.FromString(new string('a', 40) + "!"));
        var violations = new List<Violation>();

        Assert.False(validator.Validate(record, violations));
        Assert.Equal(ViolationCodes.PatternTimeout, Assert.Single(violations).Code);
    }

    private sealed class SingleField(Value value) : IRecord
    {
        public Value Get(int slot) => value;
    }
}
