namespace Runner.Core.Transitions;

/// <summary>A command a transition asks for; becomes one outbox item.</summary>
internal sealed record CommandRequest(string Effect, string? Id, string PayloadJson, string? Pool);

/// <summary>
/// A timer a transition sets; fires as an event at <see cref="DueMs"/>. A deadline timer is handed
/// to <c>compensate</c> (when the script has one) instead of <c>on_event</c>.
/// </summary>
internal sealed record ScheduleRequest(string Name, long DueMs, string? PayloadJson, bool Deadline = false);

/// <summary>The validated result of <c>on_event</c> or <c>compensate</c>.</summary>
internal sealed record TransitionOutput(
    string StateJson,
    IReadOnlyList<CommandRequest> Commands,
    IReadOnlyList<ScheduleRequest> Schedules,
    IReadOnlyList<string> Cancel,
    bool Done);
