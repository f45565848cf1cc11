using System.Text.Json;

namespace Runner.Core.Transitions;

/// <summary>A command a transition asks for; becomes one outbox item. <see cref="Payload"/> is an element of the transition's result document.</summary>
internal sealed record CommandRequest(string Effect, string? Id, JsonElement Payload, string? Pool)
{
    /// <summary>The payload as JSON text (made on each call).</summary>
    public string PayloadJson => Payload.GetRawText();
}

/// <summary>
/// A timer a transition sets; fires as an event at <see cref="DueMs"/>. A deadline timer is handed
/// to <c>compensate</c> (when the script has one) instead of <c>on_event</c>.
/// </summary>
internal sealed record ScheduleRequest(string Name, long DueMs, string? PayloadJson, bool Deadline = false);

/// <summary>
/// The validated result of <c>on_event</c> or <c>compensate</c>. <see cref="State"/> and each command's
/// payload are elements of one document holding the result's UTF-8 (its own copy, not pooled): they are
/// stored as they are, with no text made of them on the way.
/// </summary>
internal sealed record TransitionOutput(
    JsonElement State,
    IReadOnlyList<CommandRequest> Commands,
    IReadOnlyList<ScheduleRequest> Schedules,
    IReadOnlyList<string> Cancel,
    bool Done)
{
    /// <summary>The state as JSON text (made on each call: observers and the test tools read it, the pipeline does not).</summary>
    public string StateJson => State.GetRawText();
}
