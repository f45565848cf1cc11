using NATS.Client.Core;
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

    /// <summary>
    /// True when a publish failed because of the message itself: larger than the server's maximum
    /// payload, or refused by the stream for good (<see cref="IsPermanent"/>). Anything else (no
    /// answer, no responders, no leader, a lost connection) is the infrastructure's, and passes.
    /// </summary>
    public static bool IsRefusal(Exception exception) =>
        exception is NatsPayloadTooLargeException || (exception is NatsJSApiException api && IsPermanent(api));

    /// <summary>
    /// True when a NATS call failed for a reason that is not the message's and passes: no answer,
    /// no responders, no leader, a lost connection, a server refusing for now (storage full, no
    /// quorum). Retry it for as long as it lasts; count it toward nothing. What the client refuses
    /// before sending (a header it cannot write, a payload too large) is the message's, and is not.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        TimeoutException or NatsTimeoutException or NatsJSTimeoutException => true,
        NatsNoRespondersException or NatsNoReplyException or NatsJSApiNoResponseException or NatsJSPublishNoResponseException => true,
        NatsConnectionFailedException or NatsJSConnectionException or NatsServerException => true,
        NatsJSApiException api => !IsPermanent(api),
        _ => false,
    };
}
