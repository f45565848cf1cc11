using Microsoft.Extensions.Logging;

namespace Runner.Effects;

/// <summary>Slice provider logs: event ids 4550–4569 (of the effect worker range).</summary>
internal static partial class EffectsLog
{
    [LoggerMessage(4550, LogLevel.Warning, "command {CommandId} (tenant {Tenant}, correlation {CorrelationId}): a lineage event for {Subject} could not be published: {Reason}")]
    public static partial void LineageFailed(ILogger logger, string commandId, string tenant, string correlationId, string subject, string reason);

    [LoggerMessage(4551, LogLevel.Warning, "command {CommandId} (tenant {Tenant}, correlation {CorrelationId}): slice {RunId} wrote a stdout line that is not a readable event envelope (cut or broken; counted as malformed_events in the result): {Line}")]
    public static partial void MalformedSliceEvent(ILogger logger, string commandId, string tenant, string correlationId, string runId, string line);
}
