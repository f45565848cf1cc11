using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>Questions about what a stream holds, answered by the stream itself.</summary>
internal static class StreamSequences
{
    /// <summary>The sequence of the last message stored on <paramref name="subject"/> (0 when there is none).</summary>
    public static async ValueTask<ulong> LastOnSubjectAsync(INatsJSStream stream, string subject, CancellationToken cancellationToken)
    {
        try
        {
            var last = await stream.GetAsync(new StreamMsgGetRequest { LastBySubj = subject }, cancellationToken);
            return last.Message.Seq;
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return 0;
        }
    }
}
