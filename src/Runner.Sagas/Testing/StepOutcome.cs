using Runner.Core.Transitions;

namespace Runner.Sagas.Testing;

/// <summary>
/// What one event did to a saga instance: a transition (state, commands with their ids and pools,
/// timers, cancels, done) or the quarantine reason it failed with. An actual outcome has every
/// field; an expected one only those it means to check (null: not checked).
/// </summary>
internal sealed record StepOutcome
{
    /// <summary>The quarantine reason (<c>script_error</c>, <c>unknown_effect</c>, …); null for a transition.</summary>
    public string? Error { get; init; }

    public string? ErrorDetail { get; init; }

    /// <summary>The state after the step, as JSON text.</summary>
    public string? StateJson { get; init; }

    public IReadOnlyList<OutcomeCommand>? Commands { get; init; }

    public IReadOnlyList<OutcomeTimer>? Schedules { get; init; }

    public IReadOnlyList<string>? Cancel { get; init; }

    public bool? Done { get; init; }

    public static StepOutcome Failed(string code, string detail) => new() { Error = code, ErrorDetail = detail };

    /// <summary>A step as the instance's history recorded it: everything is checked, ids and pools included.</summary>
    public static StepOutcome FromHistory(HistoryStep step)
    {
        var commands = new List<OutcomeCommand>(step.Commands.Count);
        foreach (var command in step.Commands)
        {
            commands.Add(new OutcomeCommand(command.Effect, command.Payload.GetRawText(), command.Id, command.Pool, CheckPool: true));
        }
        var schedules = new List<OutcomeTimer>(step.Schedules.Count);
        foreach (var timer in step.Schedules)
        {
            schedules.Add(new OutcomeTimer(timer.Name, timer.DueMs, timer.Deadline, timer.Payload?.GetRawText() ?? "null"));
        }
        return new StepOutcome
        {
            StateJson = step.State.GetRawText(),
            Commands = commands,
            Schedules = schedules,
            Cancel = step.Cancel,
            Done = step.Done,
        };
    }
}

/// <summary>
/// A command of an outcome. <see cref="Id"/> is checked when an expected command has one, the
/// pool when <see cref="CheckPool"/> is set (a pool of null then means "no pool").
/// </summary>
internal sealed record OutcomeCommand(string Effect, string PayloadJson, string? Id = null, string? Pool = null, bool CheckPool = false);

/// <summary>
/// A timer an outcome sets, due at <see cref="DueMs"/> (Unix ms). <see cref="Deadline"/> and
/// <see cref="PayloadJson"/> are checked when an expected timer has them (null: not checked).
/// </summary>
internal sealed record OutcomeTimer(string Name, long DueMs, bool? Deadline = null, string? PayloadJson = null);
