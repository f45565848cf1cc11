using System.Buffers;
using System.Text.Json;

namespace Runner.Slice.Engine;

/// <summary>Totals of a run so far; a resumed run continues them, so its result counts the whole run.</summary>
internal sealed class RunTotals
{
    public long RecordsIn { get; set; }

    public long RecordsOut { get; set; }

    public long DeadLettered { get; set; }

    public long Filtered { get; set; }

    public long BytesIn { get; set; }

    public long Batches { get; set; }

    public Dictionary<string, long> DeadLetteredByCode { get; } = new(StringComparer.Ordinal);

    /// <summary>Dead letters by the stage that refused them (<c>source</c>, <c>input_contract</c>, <c>filter</c>, <c>map</c>, <c>contract</c>).</summary>
    public Dictionary<string, long> DeadLetteredByStage { get; } = new(StringComparer.Ordinal);

    /// <summary>Records that broke a rule of each field of the sink's contract (its lineage data-quality assertions); lock it to read while the run goes on.</summary>
    public Dictionary<string, long> ViolationsByField { get; } = new(StringComparer.Ordinal);

    /// <summary>The same for the source's contract; lock it to read while the run goes on.</summary>
    public Dictionary<string, long> InputViolationsByField { get; } = new(StringComparer.Ordinal);

    /// <summary>Input records refused before any transform: unreadable, late, or breaking the source's contract.</summary>
    public long RefusedBeforeTransforms =>
        DeadLetteredByStage.GetValueOrDefault("source") + DeadLetteredByStage.GetValueOrDefault(ContractStage.Input);
}

/// <summary>
/// Progress of a run, written after its sinks committed: where to resume reading, how far each
/// output was committed, and the totals. <see cref="State"/> is <c>running</c> until the run ends;
/// a finished run keeps its result, so running it again reports it instead of redoing it.
/// </summary>
internal sealed record Checkpoint(string RunId, string State, long SourcePosition, long SourceLine, SinkPosition Sink, SinkPosition? DeadLetter, RunTotals Totals)
{
    public const string Running = "running";
    public const string Completed = "completed";

    /// <summary>The result JSON of a completed run.</summary>
    public string? Result { get; init; }

    /// <summary>Reads a checkpoint; null when there is none or it belongs to another run.</summary>
    public static Checkpoint? Load(string path, string runId)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        if (root.GetProperty("run_id").GetString() != runId)
        {
            return null;
        }
        var totals = new RunTotals();
        var t = root.GetProperty("totals");
        totals.RecordsIn = t.GetProperty("records_in").GetInt64();
        totals.RecordsOut = t.GetProperty("records_out").GetInt64();
        totals.DeadLettered = t.GetProperty("dead_lettered").GetInt64();
        totals.Filtered = t.GetProperty("filtered").GetInt64();
        totals.BytesIn = t.GetProperty("bytes_in").GetInt64();
        totals.Batches = t.GetProperty("batches").GetInt64();
        Counts(t.GetProperty("dead_lettered_by_code"), totals.DeadLetteredByCode);
        // Checkpoints written before a count existed lack it: the run goes on from zero for it.
        foreach (var (name, counts) in new[]
        {
            ("dead_lettered_by_stage", totals.DeadLetteredByStage),
            ("violations_by_field", totals.ViolationsByField),
            ("input_violations_by_field", totals.InputViolationsByField),
        })
        {
            if (t.TryGetProperty(name, out var element))
            {
                Counts(element, counts);
            }
        }
        return new Checkpoint(
            runId,
            root.GetProperty("state").GetString()!,
            root.GetProperty("source_position").GetInt64(),
            root.GetProperty("source_line").GetInt64(),
            ReadSink(root.GetProperty("sink"))!,
            root.TryGetProperty("dead_letter", out var dead) ? ReadSink(dead) : null,
            totals)
        {
            Result = root.TryGetProperty("result", out var result) ? result.GetRawText() : null,
        };
    }

    /// <summary>Writes the checkpoint durably: a temp file, fsync, then an atomic rename over the old one.</summary>
    public void Save(string path)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("run_id", RunId);
            json.WriteString("state", State);
            json.WriteNumber("source_position", SourcePosition);
            json.WriteNumber("source_line", SourceLine);
            json.WritePropertyName("sink");
            WriteSink(json, Sink);
            if (DeadLetter is not null)
            {
                json.WritePropertyName("dead_letter");
                WriteSink(json, DeadLetter);
            }
            json.WriteStartObject("totals");
            json.WriteNumber("records_in", Totals.RecordsIn);
            json.WriteNumber("records_out", Totals.RecordsOut);
            json.WriteNumber("dead_lettered", Totals.DeadLettered);
            json.WriteNumber("filtered", Totals.Filtered);
            json.WriteNumber("bytes_in", Totals.BytesIn);
            json.WriteNumber("batches", Totals.Batches);
            WriteCounts(json, "dead_lettered_by_code", Totals.DeadLetteredByCode);
            WriteCounts(json, "dead_lettered_by_stage", Totals.DeadLetteredByStage);
            WriteCounts(json, "violations_by_field", Totals.ViolationsByField);
            WriteCounts(json, "input_violations_by_field", Totals.InputViolationsByField);
            json.WriteEndObject();
            if (Result is not null)
            {
                json.WritePropertyName("result");
                json.WriteRawValue(Result);
            }
            json.WriteEndObject();
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(buffer.WrittenSpan);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    private static void Counts(JsonElement element, Dictionary<string, long> into)
    {
        foreach (var count in element.EnumerateObject())
        {
            into[count.Name] = count.Value.GetInt64();
        }
    }

    private static void WriteCounts(Utf8JsonWriter json, string name, Dictionary<string, long> counts)
    {
        json.WriteStartObject(name);
        lock (counts)
        {
            foreach (var (key, count) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                json.WriteNumber(key, count);
            }
        }
        json.WriteEndObject();
    }

    private static SinkPosition? ReadSink(JsonElement element) => new(
        element.GetProperty("bytes").GetInt64(),
        element.GetProperty("records").GetInt64(),
        element.TryGetProperty("columns", out var columns) ? [.. columns.EnumerateArray().Select(c => c.GetString()!)] : null);

    private static void WriteSink(Utf8JsonWriter json, SinkPosition sink)
    {
        json.WriteStartObject();
        json.WriteNumber("bytes", sink.Bytes);
        json.WriteNumber("records", sink.Records);
        if (sink.Columns is { } columns)
        {
            json.WriteStartArray("columns");
            foreach (var column in columns)
            {
                json.WriteStringValue(column);
            }
            json.WriteEndArray();
        }
        json.WriteEndObject();
    }
}
