using System.Text;
using NATS.Client.JetStream;
using Runner.Core.Events;
using Runner.Core.Transitions;
using Runner.Messaging;

namespace Runner.Effects.Providers.Slices;

/// <summary>Where a slice's OpenLineage run events go.</summary>
internal interface ILineagePublisher
{
    /// <summary>Publishes one RunEvent (its JSON) for the command, waiting for the PubAck.</summary>
    ValueTask PublishAsync(CommandMessage command, string subject, string messageId, string eventJson, CancellationToken cancellationToken);
}

/// <summary>
/// Publishes lineage to JetStream (the LINEAGE stream holds <c>lineage.&gt;</c>) with the command's
/// end-to-end headers and a <c>Nats-Msg-Id</c> per run and event type, so a slice run again after a
/// takeover does not publish its events twice within the duplicate window.
/// </summary>
internal sealed class JetStreamLineagePublisher(INatsJSContext js) : ILineagePublisher
{
    public async ValueTask PublishAsync(CommandMessage command, string subject, string messageId, string eventJson, CancellationToken cancellationToken)
    {
        var headers = NatsMessages.EndToEnd(command.Tenant, command.CorrelationId, command.CommandId, command.TraceParent);
        var ack = await js.PublishAsync(subject, Encoding.UTF8.GetBytes(eventJson), headers: headers,
            opts: new NatsJSPubOpts { MsgId = EventHeaders.Encode(messageId) }, cancellationToken: cancellationToken);
        ack.EnsureStored();
    }
}
