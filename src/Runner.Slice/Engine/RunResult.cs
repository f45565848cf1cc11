using System.Buffers;
using System.Text;
using System.Text.Json;
using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>
/// What a run reports on stdout (and what the effect worker returns as the slice effect's result):
/// the outcome and exit code, records in/out/dead-lettered/filtered, dead letters by code and by
/// stage (so each contract's side shows), bytes, duration, the checkpoint, the outputs, and
/// per-stage metrics.
/// </summary>
internal sealed class RunResult
{
    private readonly byte[] _json;

    private RunResult(RunOutcome outcome, byte[] json)
    {
        Outcome = outcome;
        _json = json;
    }

    public RunResult(SliceSpec spec, RunOutcome outcome, string? error, RunTotals totals, ISink sink, ISink? deadLetters,
        TimeSpan duration, string? checkpointPath, long sourcePosition, IReadOnlyList<StageMetrics> stages, int batchesAllocated)
        : this(outcome, Write(spec, outcome, error, totals, sink, deadLetters, duration, checkpointPath, sourcePosition, stages, batchesAllocated))
    {
    }

    public RunOutcome Outcome { get; }

    public int ExitCode => (int)Outcome;

    public ReadOnlyMemory<byte> Json => _json;

    public string ToJsonString() => Encoding.UTF8.GetString(_json);

    /// <summary>The stored result of a run that already completed, marked as replayed.</summary>
    public static RunResult Replayed(string stored)
    {
        using var document = JsonDocument.Parse(stored);
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name != "replayed")
                {
                    property.WriteTo(json);
                }
            }
            json.WriteBoolean("replayed", true);
            json.WriteEndObject();
        }
        var status = document.RootElement.GetProperty("exit_code").GetInt32();
        return new RunResult((RunOutcome)status, buffer.WrittenSpan.ToArray());
    }

    /// <summary>A run that could not be carried out at all (e.g. NATS unreachable, an input that cannot be opened).</summary>
    public static RunResult Failure(string runId, string error)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("run_id", runId);
            json.WriteString("status", RunOutcomes.Name(RunOutcome.Failed));
            json.WriteNumber("exit_code", (int)RunOutcome.Failed);
            json.WriteString("exit_reason", "error");
            json.WriteString("error", error);
            json.WriteEndObject();
        }
        return new RunResult(RunOutcome.Failed, buffer.WrittenSpan.ToArray());
    }

    /// <summary>A run that never started because its spec is invalid.</summary>
    public static RunResult Invalid(IEnumerable<string> problems)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("status", RunOutcomes.Name(RunOutcome.InvalidSpec));
            json.WriteNumber("exit_code", (int)RunOutcome.InvalidSpec);
            json.WriteString("exit_reason", "invalid_spec");
            json.WriteStartArray("errors");
            foreach (var problem in problems)
            {
                json.WriteStringValue(problem);
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return new RunResult(RunOutcome.InvalidSpec, buffer.WrittenSpan.ToArray());
    }

    private static byte[] Write(SliceSpec spec, RunOutcome outcome, string? error, RunTotals totals, ISink sink, ISink? deadLetters,
        TimeSpan duration, string? checkpointPath, long sourcePosition, IReadOnlyList<StageMetrics> stages, int batchesAllocated)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("run_id", spec.Run.Id);
            json.WriteStartObject("job");
            json.WriteString("namespace", spec.Run.Job.Namespace);
            json.WriteString("name", spec.Run.Job.Name);
            json.WriteEndObject();
            json.WriteString("status", RunOutcomes.Name(outcome));
            json.WriteNumber("exit_code", (int)outcome);
            json.WriteString("exit_reason", outcome switch
            {
                RunOutcome.Succeeded => "end_of_input",
                RunOutcome.Aborted => "drained",
                RunOutcome.ContractThresholdExceeded => "contract_threshold_exceeded",
                _ => "error",
            });
            if (error is null)
            {
                json.WriteNull("error");
            }
            else
            {
                json.WriteString("error", error);
            }
            json.WriteStartObject("records");
            json.WriteNumber("in", totals.RecordsIn);
            json.WriteNumber("out", totals.RecordsOut);
            json.WriteNumber("dead_lettered", totals.DeadLettered);
            json.WriteNumber("filtered", totals.Filtered);
            json.WriteEndObject();
            Counts(json, "dead_lettered_by_code", totals.DeadLetteredByCode);
            Counts(json, "dead_lettered_by_stage", totals.DeadLetteredByStage);
            json.WriteStartObject("bytes");
            json.WriteNumber("in", totals.BytesIn);
            json.WriteNumber("out", sink.Bytes);
            json.WriteNumber("dead_letter", deadLetters?.Bytes ?? 0);
            json.WriteEndObject();
            json.WriteNumber("duration_ms", Math.Round(duration.TotalMilliseconds, 1));
            json.WriteNumber("batches", totals.Batches);
            json.WriteNumber("batches_allocated", batchesAllocated);
            if (checkpointPath is null)
            {
                json.WriteNull("checkpoint");
            }
            else
            {
                json.WriteStartObject("checkpoint");
                json.WriteString("path", checkpointPath);
                json.WriteNumber("source_position", sourcePosition);
                json.WriteEndObject();
            }
            Output(json, "output", sink);
            if (deadLetters is null)
            {
                json.WriteNull("dead_letter");
            }
            else
            {
                Output(json, "dead_letter", deadLetters);
            }
            json.WriteStartArray("stages");
            foreach (var stage in stages)
            {
                json.WriteStartObject();
                json.WriteString("name", stage.Name);
                json.WriteNumber("records_in", stage.RecordsIn);
                json.WriteNumber("records_out", stage.RecordsOut);
                json.WriteStartObject("dropped");
                foreach (var (reason, count) in stage.Dropped.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    json.WriteNumber(reason, count);
                }
                json.WriteEndObject();
                json.WriteNumber("batches", stage.Batches);
                json.WriteStartObject("input_depth");
                json.WriteNumber("max", stage.MaxInputDepth);
                json.WriteNumber("mean", Math.Round(stage.MeanInputDepth, 2));
                json.WriteEndObject();
                json.WriteStartObject("latency_ms");
                json.WriteNumber("total", Math.Round(stage.BusyMs, 2));
                json.WriteNumber("mean_batch", Math.Round(stage.MeanBatchMs, 3));
                json.WriteNumber("max_batch", Math.Round(stage.MaxBatchMs, 3));
                json.WriteEndObject();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteBoolean("replayed", false);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void Counts(Utf8JsonWriter json, string name, Dictionary<string, long> counts)
    {
        json.WriteStartObject(name);
        foreach (var (key, count) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            json.WriteNumber(key, count);
        }
        json.WriteEndObject();
    }

    private static void Output(Utf8JsonWriter json, string name, ISink sink)
    {
        json.WriteStartObject(name);
        json.WriteString("namespace", sink.Dataset.Namespace);
        json.WriteString("name", sink.Dataset.Name);
        json.WriteNumber("records", sink.Records);
        json.WriteNumber("bytes", sink.Bytes);
        json.WriteEndObject();
    }
}
