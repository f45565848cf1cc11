using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>PubAck handling for publishes that may be retried.</summary>
internal static class PubAcks
{
    /// <summary>
    /// Throws unless the server stored the message. A duplicate (same Nats-Msg-Id within the
    /// window) counts as stored: that is exactly what a retried publish hopes for. The client's
    /// own EnsureSuccess treats it as an error, which would retry such a publish forever.
    /// </summary>
    public static void EnsureStored(this PubAckResponse ack)
    {
        if (ack.Error is { } error)
        {
            throw new NatsJSApiException(error);
        }
    }

    /// <summary>JetStream's error code for a message larger than the stream allows.</summary>
    public const int MessageTooLarge = 10054;

    /// <summary>
    /// True when the server refused a message for a reason the same bytes will always meet (too
    /// large for the stream). Other refusals (storage full, stream offline, no quorum) pass, so a
    /// publish that met one is retried, never given up on.
    /// </summary>
    public static bool IsPermanent(NatsJSApiException exception) => exception.Error.ErrCode == MessageTooLarge;
}
