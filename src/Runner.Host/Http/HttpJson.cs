using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Runner.Host.Instances;
using Runner.Host.Operations;
using Runner.Sagas.Instances;
using Runner.Sagas.Quarantine;

namespace Runner.Host.Http;

/// <summary>
/// What the HTTP endpoints answer, in types the JSON source generator writes (snake_case names, as
/// the endpoints always answered): nothing is serialized by reflection, so the runner behaves the
/// same compiled ahead of time as on the JIT.
/// </summary>
internal static class HttpJson
{
    /// <summary>A JSON reply with its type's generated writer.</summary>
    public static IResult Reply<T>(T value, JsonTypeInfo<T> type, int statusCode = StatusCodes.Status200OK) =>
        Results.Json(value, type, statusCode: statusCode);

    /// <summary><c>{"error": message}</c>.</summary>
    public static IResult Error(string? message, int statusCode) =>
        Results.Json(new ErrorReply(message), HttpJsonContext.Wire.ErrorReply, statusCode: statusCode);

    /// <summary><c>{"error": message, "state": state}</c>.</summary>
    public static IResult Error(string message, string state, int statusCode) =>
        Results.Json(new StateErrorReply(message, state), HttpJsonContext.Wire.StateErrorReply, statusCode: statusCode);
}

internal sealed record ErrorReply(string? Error);

internal sealed record StateErrorReply(string Error, string State);

internal sealed record StateReply(string State);

internal sealed record HealthDownReply(string Status, string State, string[] Failing);

internal sealed record HealthCheckReply(bool Ok, string? Error);

internal sealed record HealthReply(string Status, IEnumerable<string> Failing, Dictionary<string, HealthCheckReply> Checks);

internal sealed record ReadyReply(
    bool Ready,
    string State,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] List<string>? Failing);

internal sealed record ReloadDivergedReply(bool Applied, string Version, string Error, SagaCheckReport Check);

internal sealed record ReloadErrorReply(string File, int Line, int Column, string Message, string Text);

internal sealed record ReloadInvalidReply(bool Applied, string Version, IEnumerable<ReloadErrorReply> Errors);

internal sealed record InstanceListHttpReply(IReadOnlyList<InstanceSummary> Instances, bool Truncated, int PartitionsAnswered, IReadOnlyList<int> PartitionsMissing);

internal sealed record AmbiguousInstanceReply(string Error, IEnumerable<string?> Tenants);

internal sealed record QuarantineListReply(IReadOnlyList<QuarantineEntry> Entries, bool Truncated);

internal sealed record QuarantineActReply(bool DryRun, IReadOnlyList<QuarantineActResult> Results);

internal sealed record ResetReply(bool DryRun, bool Applied, string? Error, ResetPreview? Preview, InstanceShowReply? Instance);

internal sealed record ControlReply(string Outcome, string? Message, InstanceShowReply? Instance);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorReply))]
[JsonSerializable(typeof(StateErrorReply))]
[JsonSerializable(typeof(StateReply))]
[JsonSerializable(typeof(HealthDownReply))]
[JsonSerializable(typeof(HealthReply))]
[JsonSerializable(typeof(ReadyReply))]
[JsonSerializable(typeof(DrainStatus))]
[JsonSerializable(typeof(ReloadOutcome))]
[JsonSerializable(typeof(ReloadDivergedReply))]
[JsonSerializable(typeof(ReloadInvalidReply))]
[JsonSerializable(typeof(InstanceListHttpReply))]
[JsonSerializable(typeof(AmbiguousInstanceReply))]
[JsonSerializable(typeof(QuarantineListReply))]
[JsonSerializable(typeof(QuarantineActReply))]
[JsonSerializable(typeof(ResetReply))]
[JsonSerializable(typeof(ControlReply))]
[JsonSerializable(typeof(PartitionTable))]
[JsonSerializable(typeof(PartitionRow))]
[JsonSerializable(typeof(ThroughputSample))]
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class HttpJsonContext : JsonSerializerContext
{
    /// <summary>
    /// What the endpoints write with: ASP.NET's own JSON settings for HTTP (web defaults, snake_case names, and only the
    /// escaping JSON needs, not the HTML-safe default), so the bytes are those the endpoints always sent.
    /// </summary>
    public static HttpJsonContext Wire { get; } = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
