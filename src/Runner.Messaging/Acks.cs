using NATS.Client.Core;

namespace Runner.Messaging;

/// <summary>Acknowledgements whose loss is harmless.</summary>
internal static class Acks
{
    /// <summary>
    /// Awaits an ack/nak/term and swallows transport failures: an acknowledgement that does not
    /// arrive only causes a redelivery, which every stage deduplicates (checkpoints, dedupe markers,
    /// Nats-Msg-Id).
    /// </summary>
    public static async Task QuietlyAsync(this ValueTask ack)
    {
        try
        {
            await ack;
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException or TimeoutException)
        {
            // redelivered later, and deduplicated there
        }
    }
}
