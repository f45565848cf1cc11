using Microsoft.Extensions.Logging;

namespace Runner.Effects;

/// <summary>Slice provider logs: event ids 4550–4569 (of the effect worker range).</summary>
internal static partial class EffectsLog
{
    [LoggerMessage(4550, LogLevel.Warning, "command {CommandId} (tenant {Tenant}): a lineage event for {Subject} could not be published: {Reason}")]
    public static partial void LineageFailed(ILogger logger, string commandId, string tenant, string subject, string reason);
}
