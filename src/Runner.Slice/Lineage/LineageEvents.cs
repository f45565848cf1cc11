using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Runner.Slice.Contracts;
using Runner.Slice.Engine;
using Runner.Slice.Specs;

namespace Runner.Slice.Lineage;

/// <summary>What a lineage event says about the run at the moment it is sent.</summary>
internal sealed record LineageSnapshot(
    RunTotals Totals,
    long BytesOut,
    long RecordsOut,
    IReadOnlyList<(string Name, string Type)> InputFields,
    IReadOnlyList<(string Name, string Type)> OutputFields,
    IReadOnlyDictionary<string, long>? InputViolationsByField,
    IReadOnlyDictionary<string, long>? OutputViolationsByField,
    string? ErrorMessage);

/// <summary>
/// OpenLineage <c>RunEvent</c>s of a slice run (spec 2-1-0): START, RUNNING, COMPLETE, FAIL, ABORT,
/// with the parent run facet, input and output datasets with their schema and statistics facets,
/// each contract's rules as data-quality assertions on the dataset it guards (the source's on the
/// input, the sink's on the output), and the error message of a failed run.
/// OpenLineage wants a UUID run id: a run id that is not one is mapped to a name-based UUID
/// (the same run id always gives the same UUID).
/// </summary>
internal static class LineageEvents
{
    public const string Producer = "urn:runner:runner-slice";
    public const string SchemaUrl = "https://openlineage.io/spec/2-1-0/OpenLineage.json#/$defs/RunEvent";
    private const string FacetBase = "https://openlineage.io/spec/facets/";

    public static byte[] Build(string eventType, DateTimeOffset time, SliceSpec spec, RunContracts contracts,
        (string Namespace, string Name) input, (string Namespace, string Name) output, LineageSnapshot? snapshot)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("eventType", eventType);
            json.WriteString("eventTime", time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("producer", Producer);
            json.WriteString("schemaURL", SchemaUrl);

            json.WriteStartObject("run");
            json.WriteString("runId", RunUuid(spec.Run.Id));
            json.WriteStartObject("facets");
            if (spec.Run.ParentRunId is { } parentRun && spec.Run.ParentJob is { } parentJob)
            {
                Facet(json, "parent", "1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet");
                json.WriteStartObject("run");
                json.WriteString("runId", RunUuid(parentRun));
                json.WriteEndObject();
                json.WriteStartObject("job");
                json.WriteString("namespace", parentJob.Namespace);
                json.WriteString("name", parentJob.Name);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            if (snapshot?.ErrorMessage is { } error)
            {
                Facet(json, "errorMessage", "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet");
                json.WriteString("message", error);
                json.WriteString("programmingLanguage", "C#");
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteEndObject();

            json.WriteStartObject("job");
            json.WriteString("namespace", spec.Run.Job.Namespace);
            json.WriteString("name", spec.Run.Job.Name);
            json.WriteEndObject();

            json.WriteStartArray("inputs");
            json.WriteStartObject();
            json.WriteString("namespace", input.Namespace);
            json.WriteString("name", input.Name);
            json.WriteStartObject("facets");
            Schema(json, snapshot?.InputFields ?? ContractFields(contracts.Source));
            json.WriteEndObject();
            json.WriteStartObject("inputFacets");
            if (snapshot is not null)
            {
                Facet(json, "inputStatistics", "1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet");
                json.WriteNumber("rowCount", snapshot.Totals.RecordsIn);
                json.WriteNumber("size", snapshot.Totals.BytesIn);
                json.WriteEndObject();
                if (contracts.Source is { } source && snapshot.InputViolationsByField is { } violations)
                {
                    Assertions(json, source, violations);
                }
            }
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();

            json.WriteStartArray("outputs");
            json.WriteStartObject();
            json.WriteString("namespace", output.Namespace);
            json.WriteString("name", output.Name);
            json.WriteStartObject("facets");
            Schema(json, snapshot?.OutputFields ?? ContractFields(contracts.Sink));
            json.WriteEndObject();
            json.WriteStartObject("outputFacets");
            if (snapshot is not null)
            {
                Facet(json, "outputStatistics", "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet");
                json.WriteNumber("rowCount", snapshot.RecordsOut);
                json.WriteNumber("size", snapshot.BytesOut);
                json.WriteEndObject();
                // The facet's own schema calls it an input facet; the sink's contract checks what
                // the run writes, so its results belong with the output's other per-run facets.
                if (contracts.Sink is { } sink && snapshot.OutputViolationsByField is { } violations)
                {
                    Assertions(json, sink, violations);
                }
            }
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();

            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The run id as OpenLineage wants it: itself when it is a UUID, else a name-based UUID derived from it.</summary>
    public static string RunUuid(string runId)
    {
        if (Guid.TryParse(runId, out var guid))
        {
            return guid.ToString("D");
        }
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("runner-slice:" + runId));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString("D");
    }

    public static IReadOnlyList<(string Name, string Type)> ContractFields(Contract? contract) =>
        contract is null ? [] : [.. contract.Fields.Select(f => (f.Name, TypeName(f.Type)))];

    public static string TypeName(FieldType type) => type.ToString().ToLowerInvariant();

    private static void Schema(Utf8JsonWriter json, IReadOnlyList<(string Name, string Type)> fields)
    {
        if (fields.Count == 0)
        {
            return;
        }
        Facet(json, "schema", "1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet");
        json.WriteStartArray("fields");
        foreach (var (name, type) in fields)
        {
            json.WriteStartObject();
            json.WriteString("name", name);
            json.WriteString("type", type);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>One assertion per field rule of the contract; it failed when a record broke a rule of that field.</summary>
    private static void Assertions(Utf8JsonWriter json, Contract contract, IReadOnlyDictionary<string, long> violationsByField)
    {
        Facet(json, "dataQualityAssertions", "1-0-1/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet");
        json.WriteStartArray("assertions");
        foreach (var rule in contract.Fields)
        {
            json.WriteStartObject();
            json.WriteString("assertion", Describe(rule));
            json.WriteBoolean("success", violationsByField.GetValueOrDefault(rule.Name) == 0);
            json.WriteString("column", rule.Name);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static string Describe(FieldRule rule)
    {
        var parts = new List<string> { $"type {TypeName(rule.Type)}" };
        if (rule.Required)
        {
            parts.Add("required");
        }
        if (!rule.Nullable)
        {
            parts.Add("not null");
        }
        if (rule.Min is { } min)
        {
            parts.Add($"min {min.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        if (rule.Max is { } max)
        {
            parts.Add($"max {max.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        if (rule.Enum is { } values)
        {
            parts.Add($"one of [{string.Join(", ", values)}]");
        }
        if (rule.Pattern is { } pattern)
        {
            parts.Add($"matches {pattern}");
        }
        if (rule.MaxLength is { } length)
        {
            parts.Add($"at most {length} characters");
        }
        return string.Join(", ", parts);
    }

    private static void Facet(Utf8JsonWriter json, string name, string schema)
    {
        json.WriteStartObject(name);
        json.WriteString("_producer", Producer);
        json.WriteString("_schemaURL", FacetBase + schema);
    }
}
