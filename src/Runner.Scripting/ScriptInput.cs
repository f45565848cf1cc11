namespace Runner.Scripting;

/// <summary>Which exported function handles the event.</summary>
internal enum ScriptHandler
{
    OnEvent,
    Compensate,
}

/// <summary>
/// Everything a transition may depend on. Nothing else reaches the script: the same input gives
/// the same output on any replica at any time.
/// </summary>
internal sealed record ScriptInput(
    string? StateJson,
    string? EventJson,
    string EventId,
    long NowMs,
    string Tenant,
    string Saga,
    string Key,
    ScriptHandler Handler = ScriptHandler.OnEvent)
{
    /// <summary>
    /// The state as stored (UTF-8 JSON inside a document), used instead of <see cref="StateJson"/> when
    /// given: no text copy of it is made for the script.
    /// </summary>
    public System.Text.Json.JsonElement? State { get; init; }

    /// <summary>
    /// The event, used instead of <see cref="EventJson"/> when given: the <c>event</c> argument is built
    /// from its fields (as <see cref="EventArgument"/> describes) rather than from a JSON text of them.
    /// </summary>
    public Core.Events.SagaEvent? Event { get; init; }

    /// <summary>Where <see cref="Event"/> was read from (its <c>stream</c>, <c>seq</c> and <c>subject</c>).</summary>
    public Core.Events.MessageOrigin Origin { get; init; }
}
