using System.Diagnostics;
using Runner.Slice.Contracts;
using Runner.Slice.Expressions;
using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>
/// The source's contract, the spec's transforms, compiled once, then the sink's contract: applied
/// record by record to each batch in order. The source's contract sees each record as it was read,
/// so a bad input is dead-lettered before a filter could drop it unnoticed. A filter that is false
/// or null drops the record; an expression that fails (a type or arithmetic error) dead-letters it
/// with the stage and field; <c>select</c> keeps the listed fields in that order; <c>map</c> sets
/// fields one after another, so a later one sees an earlier one. The sink's contract checks what
/// leaves the transforms.
/// </summary>
internal sealed class TransformStage
{
    private readonly Step[] _steps;
    private readonly ContractStage? _input;
    private readonly ContractStage? _output;
    private FieldEntry[] _scratch = new FieldEntry[16];

    private sealed record Step(string Kind, StageMetrics Metrics, CompiledExpression? Where, int[]? Slots, (int Slot, string Field, CompiledExpression Expression)[]? Set);

    public TransformStage(SliceSpec spec, RunContracts contracts, FieldTable fields)
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
        // A CSV cell takes its field's contract type: the source's contract describes what is
        // read, so it wins over the sink's where both declare a field.
        foreach (var rule in contracts.Source?.Fields ?? [])
        {
            fields[fields.Intern(rule.Name)].Type = rule.Type;
        }
        foreach (var rule in contracts.Sink?.Fields ?? [])
        {
            fields[fields.Intern(rule.Name)].Type ??= rule.Type;
        }
        if (contracts.Source is { } source)
        {
            _input = new ContractStage(ContractStage.Input, source, spec.Source.Contract!, Resolve);
        }
        if (contracts.Sink is { } sink)
        {
            _output = new ContractStage(ContractStage.Output, sink, spec.Sink.Contract!, Resolve);
        }
    }

    /// <summary>Each stage's figures in the order records meet them.</summary>
    public IEnumerable<StageMetrics> Metrics
    {
        get
        {
            if (_input is not null)
            {
                yield return _input.Metrics;
            }
            foreach (var step in _steps)
            {
                yield return step.Metrics;
            }
            if (_output is not null)
            {
                yield return _output.Metrics;
            }
        }
    }

    /// <summary>Runs every step over the batch's live records; dropped and dead-lettered ones stop being live.</summary>
    public void Apply(RecordBatch batch, int inputDepth)
    {
        _input?.Check(batch, inputDepth);
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
        _output?.Check(batch, inputDepth);
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
