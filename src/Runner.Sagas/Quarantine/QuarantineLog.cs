using Microsoft.Extensions.Logging;

namespace Runner.Sagas.Quarantine;

/// <summary>Quarantine operations log messages; event ids 3420–3439.</summary>
internal static partial class QuarantineLog
{
    [LoggerMessage(3420, LogLevel.Information, "quarantine record {Id} ({Reason}, {Stream}#{Sequence}) requeued as {CopyStream}#{CopySequence} with Nats-Msg-Id {MsgId}")]
    public static partial void Requeued(ILogger logger, string id, string reason, string stream, ulong sequence, string copyStream, ulong copySequence, string msgId);

    [LoggerMessage(3421, LogLevel.Information, "quarantine record {Id} ({Reason}, {Stream}#{Sequence}) discarded")]
    public static partial void Discarded(ILogger logger, string id, string reason, string stream, ulong sequence);
}
