using Runner.Core.Events;
using Runner.Core.Manifests;

namespace Runner.Effects.Providers;

/// <summary>
/// <c>provider: gateway</c>: POSTs an aggregate command to the platform gateway as
/// <c>{ command_id, command, tenant, correlation_id, saga, payload }</c>, where <c>command</c> is the
/// manifest's <c>gateway.command</c> or else the effect name. Headers: the manifest's, then
/// <c>Idempotency-Key</c>, <c>x-tenant-id</c>, <c>x-correlation-id</c>, <c>x-causation-id</c>
/// (the command id) and <c>traceparent</c>.
/// </summary>
internal sealed class GatewayProvider(HttpExchange exchange) : IEffectProvider
{
    public string Kind => EffectManifest.GatewayProvider;

    public string Upstream(EffectCall call) =>
        call.Effect.Gateway is { } gateway ? HttpExchange.Upstream(gateway.Url, call.Command) : call.Effect.Name;

    public ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken)
    {
        if (call.Effect.Gateway is not { } gateway)
        {
            return ValueTask.FromResult(AttemptOutcome.Permanent(EffectErrorCodes.ProviderError, $"effect '{call.Effect.Name}' has no gateway section"));
        }
        var command = call.Command;
        var body = HttpExchange.WriteJson((command, Name: gateway.Command ?? call.Effect.Name), static (writer, state) =>
        {
            var (command, name) = state;
            writer.WriteStartObject();
            writer.WriteString("command_id", command.CommandId);
            writer.WriteString("command", name);
            writer.WriteString("tenant", command.Tenant);
            writer.WriteString("correlation_id", command.CorrelationId);
            writer.WriteString("saga", command.Saga);
            writer.WritePropertyName("payload");
            HttpExchange.WritePayload(writer, command.Payload);
            writer.WriteEndObject();
        });
        List<KeyValuePair<string, string>> headers =
        [
            new(HttpProvider.IdempotencyKey, command.CommandId),
            new("x-" + EventHeaders.TenantId, command.Tenant),
            new("x-" + EventHeaders.CorrelationId, command.CorrelationId),
            new("x-" + EventHeaders.CausationId, command.CommandId),
        ];
        if (call.TraceParent is { } traceParent)
        {
            headers.Add(new(EventHeaders.TraceParent, traceParent));
        }
        return exchange.SendAsync(new OutgoingRequest(HttpMethod.Post, gateway.Url, gateway.Headers, headers, body), command, cancellationToken);
    }
}
