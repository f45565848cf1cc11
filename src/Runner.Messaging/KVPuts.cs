using System.Globalization;
using System.Runtime.CompilerServices;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>
/// Compare-and-set puts into one KV bucket, written as the client's KV store writes them (the
/// <c>$KV.{bucket}.{key}</c> subject, the expected revision in <c>Nats-Expected-Last-Subject-Sequence</c>)
/// but through the connection's <see cref="PubAckPipeline"/>: many puts in flight on one reply
/// subscription instead of a request-reply each. For writes on a hot path; reads, deletes and
/// everything else stay with the client's store.
/// </summary>
internal sealed class KVPuts(PubAckPipeline pipeline, string bucket)
{
    private const string ExpectedLastSubjectSequence = "Nats-Expected-Last-Subject-Sequence";

    private readonly string _subjectPrefix = "$KV." + bucket + ".";

    /// <summary>
    /// Puts <paramref name="value"/> if the key's last revision is <paramref name="expected"/> (0: the key
    /// holds nothing): the new revision, or null when it is not. A missing PubAck is a
    /// <see cref="TimeoutException"/> (or <see cref="NatsNoReplyException"/> when the reply subscription
    /// ended first): the put may have been stored, which only a read can tell.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ulong?> TryPutAsync(string key, byte[] value, ulong expected, CancellationToken cancellationToken)
    {
        var headers = new NatsHeaders { [ExpectedLastSubjectSequence] = expected.ToString(CultureInfo.InvariantCulture) };
        var pending = await pipeline.PublishAsync(_subjectPrefix + key, value, msgId: null, headers, cancellationToken);
        var ack = await pending.GetResponseAsync(cancellationToken);
        if (ack.Error is { } error)
        {
            if (IsWrongLastSequence(error))
            {
                return null;
            }
            throw new NatsJSApiException(error);
        }
        return ack.Seq;
    }

    /// <summary>What the client's KV store reads as a wrong revision (10071; 10164 on newer servers).</summary>
    private static bool IsWrongLastSequence(ApiError error) =>
        error is { Code: 400, ErrCode: 10071 or 10164, Description: { } description }
        && description.StartsWith("wrong last sequence", StringComparison.OrdinalIgnoreCase);
}
