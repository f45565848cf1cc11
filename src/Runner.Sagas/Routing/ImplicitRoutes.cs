using System.Text.Json;
using Runner.Core.Events;
using Runner.Sagas.Manifests;

namespace Runner.Sagas.Routing;

/// <summary>
/// Runner's own events on WORKFLOW_EVENTS go back to the saga that caused them, without the saga
/// declaring a trigger: a timer on <c>workflow.evt.{tenant}.timer.{saga}</c> to that saga, keyed by
/// <c>data.key</c>; an effect result on <c>workflow.evt.{tenant}.{effect}.{succeeded|failed}</c> to
/// the saga named in <c>data.saga</c>, keyed by <c>data.correlation_id</c>.
/// </summary>
internal static class ImplicitRoutes
{
    public const string TimerCorrelation = "$.data.key (implicit timer route)";
    public const string ResultCorrelation = "$.data.correlation_id (implicit effect-result route)";

    /// <summary>Whether a message may route implicitly, decided from its subject before it is decoded.</summary>
    public static bool MayApply(ManifestSet manifests, string stream, string subject) =>
        manifests.Sagas.Count > 0
        && string.Equals(stream, manifests.WorkflowEvents, StringComparison.Ordinal)
        && (TimerSaga(manifests, subject) is not null || IsResult(subject));

    /// <summary>The saga the event goes back to, with the key found in its data (null when missing).</summary>
    public static (LoadedSaga Saga, string? Key, string Correlation)? Find(ManifestSet manifests, string subject, SagaEvent evt)
    {
        if (TimerSaga(manifests, subject) is { } timerSaga)
        {
            return (timerSaga, DataString(evt, "key"), TimerCorrelation);
        }
        if (IsResult(subject) && DataString(evt, "saga") is { } name && manifests.Saga(name) is { } resultSaga)
        {
            return (resultSaga, DataString(evt, "correlation_id"), ResultCorrelation);
        }
        return null;
    }

    /// <summary><c>workflow.evt.{tenant}.timer.{saga}</c>, where the saga (whose name may hold dots) is loaded.</summary>
    private static LoadedSaga? TimerSaga(ManifestSet manifests, string subject)
    {
        var tokens = subject.Split('.');
        return tokens.Length >= 5 && tokens[0] == "workflow" && tokens[1] == "evt" && tokens[3] == "timer"
            ? manifests.Saga(string.Join('.', tokens, 4, tokens.Length - 4))
            : null;
    }

    /// <summary><c>workflow.evt.{tenant}.{effect}.{succeeded|failed}</c>, the effect being one token or more.</summary>
    private static bool IsResult(string subject) =>
        subject.StartsWith("workflow.evt.", StringComparison.Ordinal)
        && subject.Count(c => c == '.') >= 4
        && (subject.EndsWith(".succeeded", StringComparison.Ordinal) || subject.EndsWith(".failed", StringComparison.Ordinal));

    private static string? DataString(SagaEvent evt, string name)
    {
        try
        {
            using var doc = JsonDocument.Parse(evt.Data);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty(name, out var value)
                && value.ValueKind == JsonValueKind.String
                ? value.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
