namespace Runner.Slice.Engine;

/// <summary>How a run ended, and the exit code the effect worker maps to an outcome.</summary>
internal enum RunOutcome
{
    Succeeded = 0,
    Failed = 1,
    InvalidSpec = 2,
    ContractThresholdExceeded = 3,
    Aborted = 4,
}

internal static class RunOutcomes
{
    public static string Name(RunOutcome outcome) => outcome switch
    {
        RunOutcome.Succeeded => "succeeded",
        RunOutcome.Failed => "failed",
        RunOutcome.InvalidSpec => "invalid_spec",
        RunOutcome.ContractThresholdExceeded => "contract_threshold_exceeded",
        _ => "aborted",
    };

    /// <summary>The OpenLineage event type that ends a run with this outcome.</summary>
    public static string LineageEventType(RunOutcome outcome) => outcome switch
    {
        RunOutcome.Succeeded => "COMPLETE",
        RunOutcome.Aborted => "ABORT",
        _ => "FAIL",
    };
}
