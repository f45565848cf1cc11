using System.Diagnostics;
using Runner.Slice.Contracts;
using Runner.Slice.Expressions;
using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>Raised when a record breaks the contract of a run whose contract says <c>on_violation: fail</c>.</summary>
internal sealed class ContractFailedException(string message) : Exception(message);

/// <summary>
/// The spec's transforms, compiled once, then the contract: applied record by record to each batch
/// in order. A filter that is false or null drops the record; an expression that fails (a type or
/// arithmetic error) dead-letters it with the stage and field; <c>select</c> keeps the listed fields
/// in that order; <c>map</c> sets fields one after another, so a later one sees an earlier one. The
/// contract checks what leaves the transforms, every rule, and dead-letters a record with all its
/// violations.
/// </summary>
internal sealed class TransformStage
{
    private readonly Step[] _steps;
    private readonly ContractValidator? _contract;
    private readonly bool _failOnViolation;
    private readonly List<Violation> _violations = [];
    private FieldEntry[] _scratch = new FieldEntry[16];

    private sealed record Step(string Kind, StageMetrics Metrics, CompiledExpression? Where, int[]? Slots, (int Slot, string Field, CompiledExpression Expression)[]? Set);

    public TransformStage(SliceSpec spec, Contract? contract, FieldTable fields)
    {
        int? Resolve(string name) => fields.Intern(name);
        var steps = new List<Step>();
        for (var i = 0; i < spec.Transforms.Count; i++)
        {
            var transform = spec.Transforms[i];
            var metrics = new StageMetrics($"{transform.Type}#{i + 1}");
            steps.Add(transform.Type switch
            {
                TransformSpec.Filter => new Step(transform.Type, metrics, ExpressionCompiler.CompileFilter(transform.Where!, Resolve), null, null),
                TransformSpec.Select => new Step(transform.Type, metrics, null, [.. transform.Fields.Select(fields.Intern)], null),
                _ => new Step(transform.Type, metrics, null, null,
                    [.. transform.Set.Select(kv => (fields.Intern(kv.Key), kv.Key, ExpressionCompiler.Compile(kv.Value, Resolve)))]),
            });
        }
        _steps = [.. steps];
        if (contract is not null)
        {
            foreach (var rule in contract.Fields)
            {
                fields[fields.Intern(rule.Name)].Type = rule.Type;
            }
            _contract = ContractValidator.Compile(contract, Resolve);
            _failOnViolation = spec.Contract!.OnViolation == ContractRef.Fail;
            ContractMetrics = new StageMetrics("contract");
        }
    }

    public StageMetrics? ContractMetrics { get; }

    public IEnumerable<StageMetrics> Metrics => _steps.Select(s => s.Metrics).Concat(ContractMetrics is null ? [] : [ContractMetrics]);

    /// <summary>Runs every step over the batch's live records; dropped and dead-lettered ones stop being live.</summary>
    public void Apply(RecordBatch batch, int inputDepth)
    {
        foreach (var step in _steps)
        {
            var started = Stopwatch.GetTimestamp();
            long records = 0, kept = 0;
            for (var i = 0; i < batch.Count; i++)
            {
                var record = batch[i];
                if (!record.Live)
                {
                    continue;
                }
                records++;
                if (ApplyStep(step, record, batch))
                {
                    kept++;
                }
            }
            step.Metrics.In(records);
            step.Metrics.Out(kept);
            step.Metrics.Batch(inputDepth, started);
        }
        if (_contract is not null)
        {
            Check(batch, inputDepth);
        }
    }

    private bool ApplyStep(Step step, SliceRecord record, RecordBatch batch)
    {
        switch (step.Kind)
        {
            case TransformSpec.Filter:
                switch (step.Where!.Test(record, out var error))
                {
                    case FilterOutcome.Keep:
                        return true;
                    case FilterOutcome.Drop:
                        record.Live = false;
                        batch.Filtered++;
                        step.Metrics.Drop("filtered");
                        return false;
                    default:
                        Dead(record, batch, step, null, error);
                        return false;
                }
            case TransformSpec.Select:
                record.Select(step.Slots!, ref _scratch);
                return true;
            default:
                foreach (var (slot, field, expression) in step.Set!)
                {
                    var value = expression.Evaluate(record);
                    if (value.IsError)
                    {
                        Dead(record, batch, step, field, value);
                        return false;
                    }
                    record.Set(slot, value);
                }
                return true;
        }
    }

    private void Check(RecordBatch batch, int inputDepth)
    {
        var metrics = ContractMetrics!;
        var started = Stopwatch.GetTimestamp();
        long records = 0, kept = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            var record = batch[i];
            if (!record.Live)
            {
                continue;
            }
            records++;
            _violations.Clear();
            if (_contract!.Validate(record, _violations))
            {
                kept++;
                continue;
            }
            var first = _violations[0];
            if (_failOnViolation)
            {
                throw new ContractFailedException($"record at offset {record.Offset}{(record.Line > 0 ? $" (line {record.Line})" : "")} breaks contract {_contract.Contract.Name} v{_contract.Contract.Version}: {first.Message}");
            }
            record.Live = false;
            metrics.Drop(first.Code);
            batch.DeadLetters.Add(new DeadLetter("contract", first.Field, first.Code, first.Message, record.Offset, record.Line)
            {
                RawStart = record.RawStart,
                RawLength = record.RawLength,
                RawIsJson = record.RawIsJson,
                Violations = [.. _violations],
            });
        }
        metrics.In(records);
        metrics.Out(kept);
        metrics.Batch(inputDepth, started);
    }

    private static void Dead(SliceRecord record, RecordBatch batch, Step step, string? field, Value error)
    {
        record.Live = false;
        var code = error.ErrorCode ?? ExpressionErrorCodes.TypeError;
        step.Metrics.Drop(code);
        batch.DeadLetters.Add(new DeadLetter(step.Kind, field, code, error.ErrorMessage ?? "expression failed", record.Offset, record.Line)
        {
            RawStart = record.RawStart,
            RawLength = record.RawLength,
            RawIsJson = record.RawIsJson,
        });
    }
}
