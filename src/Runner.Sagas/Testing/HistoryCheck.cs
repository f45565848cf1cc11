using Runner.Core.Transitions;
using Runner.Sagas.Manifests;
using Runner.Scripting;

namespace Runner.Sagas.Testing;

/// <summary>How a candidate script fares on one instance's recorded history.</summary>
/// <param name="Steps">Steps replayed.</param>
/// <param name="Differences">Each difference between what the running version did and what the candidate does, by step.</param>
internal sealed record InstanceCheck(string Tenant, string Saga, string Key, int Steps, List<string> Differences);

/// <summary>
/// Replays an instance's kept history through a candidate manifest set: each step runs with the
/// state the instance had before it (as recorded, so one divergence does not cascade into every
/// later step) and the exact event the running version was given, and its outcome is compared
/// with what the running version recorded — state, commands with ids and pools, timers, cancels,
/// done. A step the operator forced to <c>compensate</c> (cancel of a parked instance) runs
/// <c>compensate</c> again.
/// </summary>
internal static class HistoryCheck
{
    public static InstanceCheck Check(ManifestSet candidate, string tenant, string sagaName, string key, IReadOnlyList<HistoryStep> history)
    {
        var differences = new List<string>();
        var saga = candidate.Saga(sagaName);
        if (saga is null)
        {
            differences.Add($"saga '{sagaName}' is not in the candidate manifests");
            return new InstanceCheck(tenant, sagaName, key, 0, differences);
        }
        // The newest unbroken run of versions: its first step's state is where a replay can start,
        // unless the run goes back to version 1 (a new instance, no state).
        var start = 0;
        for (var i = 1; i < history.Count; i++)
        {
            if (history[i].Version != history[i - 1].Version + 1)
            {
                start = i;
            }
        }
        string? state = null;
        if (history.Count > 0 && history[start].Version != 1)
        {
            state = history[start].State.GetRawText();
            start++;
        }
        var steps = 0;
        for (var i = start; i < history.Count; i++)
        {
            var step = history[i];
            var label = $"v{step.Version} ({step.Type} {step.EventId})";
            var evt = StepEvent.FromScriptEvent(step.Event, out var error);
            if (evt is null)
            {
                differences.Add($"{label}: the recorded event cannot be replayed: {error}");
                break;
            }
            ScriptHandler? handler = step.Handler == "compensate" && saga.Script.HasCompensate ? ScriptHandler.Compensate : null;
            var actual = SagaStepper.Run(candidate, saga, key, state, evt, handler);
            steps++;
            foreach (var difference in OutcomeComparer.Compare(StepOutcome.FromHistory(step), actual))
            {
                differences.Add($"{label}: {difference}");
            }
            state = step.State.GetRawText();
        }
        return new InstanceCheck(tenant, sagaName, key, steps, differences);
    }
}
