using Runner.Slice.Expressions;
using Xunit;

namespace Runner.Slice.Tests.Expressions;

public sealed class BulkEvaluationTests
{
    private static readonly string[] s_fields = ["order_id", "amount", "status"];

    private static int? Resolve(string name) => Array.IndexOf(s_fields, name) is var i and >= 0 ? i : null;

    [Fact]
    public void One_compiled_filter_and_map_evaluate_100k_records()
    {
        var filter = ExpressionCompiler.CompileFilter(
            "amount > 0 and status in ('paid', 'shipped') and order_id % 7 != 0", Resolve);
        var map = ExpressionCompiler.Compile("round(amount * 100)", Resolve);
        var statuses = new[] { "paid", "shipped", "cancelled" };
        var record = new MutableRecord(3);

        var kept = 0;
        var errors = 0;
        long cents = 0;
        for (long id = 0; id < 100_000; id++)
        {
            record.Set(0, Value.FromInteger(id));
            record.Set(1, id % 10 == 0 ? Value.Null : Value.FromDouble((id % 200) - 50.25));
            record.Set(2, id % 1000 == 0 ? Value.FromInteger(1) : Value.FromString(statuses[id % 3]));

            switch (filter.Test(record, out _))
            {
                case FilterOutcome.Keep:
                    kept++;
                    cents += map.Evaluate(record).AsInteger;
                    break;
                case FilterOutcome.Error:
                    errors++;
                    break;
            }
        }

        var (expectedKept, expectedCents) = Expected(statuses);
        Assert.Equal(expectedKept, kept);
        Assert.Equal(expectedCents, cents);
        Assert.Equal(0, errors); // a status of 1 only ever meets 'in', which is equality: no error, just no match
    }

    private static (int Kept, long Cents) Expected(string[] statuses)
    {
        var kept = 0;
        long cents = 0;
        for (long id = 0; id < 100_000; id++)
        {
            if (id % 10 == 0 || id % 1000 == 0 || id % 7 == 0)
            {
                continue;
            }

            var amount = (id % 200) - 50.25;
            if (amount > 0 && statuses[id % 3] != "cancelled")
            {
                kept++;
                cents += (long)Math.Round(amount * 100, MidpointRounding.AwayFromZero);
            }
        }

        return (kept, cents);
    }

    private sealed class MutableRecord(int size) : IRecord
    {
        private readonly Value[] _values = new Value[size];

        public void Set(int slot, Value value) => _values[slot] = value;

        public Value Get(int slot) => _values[slot];
    }
}
