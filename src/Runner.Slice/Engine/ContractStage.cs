using System.Diagnostics;
using Runner.Slice.Contracts;
using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>Raised when a record breaks a contract whose <c>on_violation</c> is <c>fail</c>.</summary>
internal sealed class ContractFailedException(string message) : Exception(message);

/// <summary>
/// One side's contract, checked over the live records of a batch: the source's before any
/// transform (dead letters of stage <c>input_contract</c>), the sink's on what leaves the
/// transforms (stage <c>contract</c>). Every rule is checked; a record that breaks any is
/// dead-lettered with all its violations, or fails the run when the contract says <c>fail</c>.
/// </summary>
internal sealed class ContractStage
{
    public const string Input = "input_contract";
    public const string Output = "contract";

    private readonly ContractValidator _validator;
    private readonly ContractRef _reference;
    private readonly List<Violation> _violations = [];

    public ContractStage(string stage, Contract contract, ContractRef reference, Func<string, int?> resolveField)
    {
        Stage = stage;
        _reference = reference;
        _validator = ContractValidator.Compile(contract, resolveField);
        Metrics = new StageMetrics(stage);
    }

    public string Stage { get; }

    public StageMetrics Metrics { get; }

    public void Check(RecordBatch batch, int inputDepth)
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
            _violations.Clear();
            if (_validator.Validate(record, _violations))
            {
                kept++;
                continue;
            }
            var first = _violations[0];
            if (_reference.OnViolation == ContractRef.Fail)
            {
                var contract = _validator.Contract;
                throw new ContractFailedException($"record at offset {record.Offset}{(record.Line > 0 ? $" (line {record.Line})" : "")} breaks {_reference.Key} {contract.Name} v{contract.Version}: {first.Message}");
            }
            record.Live = false;
            Metrics.Drop(first.Code);
            batch.DeadLetters.Add(new DeadLetter(Stage, first.Field, first.Code, first.Message, record.Offset, record.Line)
            {
                RawStart = record.RawStart,
                RawLength = record.RawLength,
                RawIsJson = record.RawIsJson,
                Violations = [.. _violations],
            });
        }
        Metrics.In(records);
        Metrics.Out(kept);
        Metrics.Batch(inputDepth, started);
    }
}
