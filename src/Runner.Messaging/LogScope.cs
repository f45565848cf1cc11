using Microsoft.Extensions.Logging;

namespace Runner.Messaging;

/// <summary>
/// The identity of the message being handled, as a log scope: every line logged while it is open
/// carries the tenant, saga and correlation id (and command id) as fields (invariant 7). The JSON
/// console writes them with each line, next to the span's trace id.
/// </summary>
internal static class LogScope
{
    public static IDisposable? For(ILogger logger, string? tenant, string? saga, string? correlationId, string? commandId = null) =>
        logger.BeginScope(new KeyValuePair<string, object?>[]
        {
            new("tenant", tenant),
            new("saga", saga),
            new("correlation_id", correlationId),
            new("command_id", commandId),
        });
}
