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
    string EventJson,
    string EventId,
    long NowMs,
    string Tenant,
    string Saga,
    string Key,
    ScriptHandler Handler = ScriptHandler.OnEvent);
