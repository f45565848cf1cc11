using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;
using Runner.Core.Manifests;
using Runner.Messaging;

namespace Runner.Effects.Providers;

/// <summary>
/// <c>provider: publish</c>: publishes the command's payload as a CloudEvent to a JetStream subject,
/// so a saga can announce an outcome (e.g. <c>pipeline.{tenant}.{pipeline}.run.completed</c>) to
/// whoever listens. The event id and <c>Nats-Msg-Id</c> are the command id, so a command performed
/// again publishes nothing new; the headers carry the command's tenant, correlation, causation
/// and trace context. The result says where it went: <c>{ subject, stream, seq, duplicate }</c>.
/// </summary>
internal sealed class PublishProvider(INatsJSContext js, TimeProvider time) : IEffectProvider
{
    public string Kind => EffectManifest.PublishProvider;

    public string Upstream(EffectCall call) => "nats";

    public async ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken)
    {
        var command = call.Command;
        if (call.Effect.Publish is not { } publish)
        {
            return AttemptOutcome.Permanent(EffectErrorCodes.ProviderError, $"effect '{call.Effect.Name}' has no publish section");
        }
        if (!CommandUrl.TryExpandSubject(publish.Subject, command, out var subject, out var error))
        {
            return AttemptOutcome.Permanent(EffectErrorCodes.InvalidCommand, error);
        }
        var type = call.Effect.Name;
        if (publish.Type is { } template && !CommandUrl.TryExpandSubject(template, command, out type, out error))
        {
            return AttemptOutcome.Permanent(EffectErrorCodes.InvalidCommand, error);
        }
        var body = HttpExchange.WriteJson((command, type, Now: time.GetUtcNow()), static (writer, state) =>
        {
            var (command, type, now) = state;
            CloudEventEncoder.WriteAttributes(writer, command.CommandId, "runner/" + command.Saga, type, now, command.Tenant, "application/json");
            writer.WritePropertyName("data");
            HttpExchange.WritePayload(writer, command.Payload);
            writer.WriteEndObject();
        });
        var headers = NatsMessages.EndToEnd(command.Tenant, command.CorrelationId, command.CommandId, command.TraceParent);
        try
        {
            var ack = await js.PublishAsync(subject, body, headers: headers,
                opts: new NatsJSPubOpts { MsgId = EventHeaders.Encode(command.CommandId) }, cancellationToken: cancellationToken);
            ack.EnsureStored();
            return AttemptOutcome.Success(System.Text.Encoding.UTF8.GetString(HttpExchange.WriteJson((subject, ack), static (writer, state) =>
            {
                writer.WriteStartObject();
                writer.WriteString("subject", state.subject);
                writer.WriteString("stream", state.ack.Stream);
                writer.WriteNumber("seq", state.ack.Seq);
                writer.WriteBoolean("duplicate", state.ack.Duplicate);
                writer.WriteEndObject();
            })));
        }
        catch (Exception e) when (e is NatsJSException or NatsException && !cancellationToken.IsCancellationRequested)
        {
            return AttemptOutcome.Transient(RetryOn.Connection, EffectErrorCodes.ConnectionFailed, $"publishing to '{subject}' failed: {e.Message}");
        }
    }
}
