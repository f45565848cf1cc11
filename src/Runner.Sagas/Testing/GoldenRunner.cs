using Runner.Sagas.Manifests;

namespace Runner.Sagas.Testing;

/// <summary>What one step of a golden file did, and how that differs from what it should have done.</summary>
internal sealed record GoldenStepResult(GoldenStep Step, StepOutcome Actual, IReadOnlyList<string> Differences)
{
    public bool Passed => Differences.Count == 0;

    /// <summary><c>step 3 (order.paid e-3)</c></summary>
    public string Title => $"step {Step.Number} ({Step.Event.Type} {Step.Event.Id})";
}

/// <summary>
/// Runs a golden file's steps through its saga's script in order, threading the state from each
/// step to the next as the worker would, and compares each outcome with the step's expectations.
/// </summary>
internal static class GoldenRunner
{
    public static List<GoldenStepResult> Run(GoldenFile file, ManifestSet manifests, LoadedSaga saga)
    {
        var results = new List<GoldenStepResult>(file.Steps.Count);
        var state = file.InitialStateJson;
        GoldenStep? finishedBy = null;
        foreach (var step in file.Steps)
        {
            // A done instance takes no more events: the worker acknowledges them without running the script.
            var actual = finishedBy is not null
                ? StepOutcome.Failed("ignored_completed", $"the instance finished at step {finishedBy.Number}; the worker acknowledges later events without running the script")
                : SagaStepper.Run(manifests, saga, file.Key, state, step.Event, step.Handler);
            if (actual.Error is null)
            {
                state = actual.StateJson;
                if (actual.Done == true)
                {
                    finishedBy = step;
                }
            }
            results.Add(new GoldenStepResult(step, actual, OutcomeComparer.Compare(step.Expect, actual)));
        }
        return results;
    }
}
