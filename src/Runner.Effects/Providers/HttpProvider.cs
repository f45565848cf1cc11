using Runner.Core.Events;
using Runner.Core.Manifests;

namespace Runner.Effects.Providers;

/// <summary>
/// <c>provider: http</c>: calls the manifest's URL with its method. POST, PUT and PATCH send the
/// command payload as JSON. Headers: the manifest's, then <c>Idempotency-Key</c> (the command id,
/// so an upstream can drop a repeated attempt) and the end-to-end <c>tenant-id</c>,
/// <c>correlation-id</c>, <c>causation-id</c> (the command id) and <c>traceparent</c>.
/// </summary>
internal sealed class HttpProvider(HttpExchange exchange) : IEffectProvider
{
    public const string IdempotencyKey = "Idempotency-Key";

    public string Kind => EffectManifest.HttpProvider;

    public string Upstream(EffectCall call) =>
        call.Effect.Http is { } http ? HttpExchange.Upstream(http.Url, call.Command) : call.Effect.Name;

    public ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken)
    {
        if (call.Effect.Http is not { } http)
        {
            return ValueTask.FromResult(AttemptOutcome.Permanent(EffectErrorCodes.ProviderError, $"effect '{call.Effect.Name}' has no http section"));
        }
        var method = HttpMethod.Parse(http.Method);
        var command = call.Command;
        var body = method == HttpMethod.Post || method == HttpMethod.Put || method == HttpMethod.Patch
            ? HttpExchange.WriteJson(command.Payload, HttpExchange.WritePayload)
            : null;
        List<KeyValuePair<string, string>> headers =
        [
            new(IdempotencyKey, command.CommandId),
            new(EventHeaders.TenantId, command.Tenant),
            new(EventHeaders.CorrelationId, command.CorrelationId),
            new(EventHeaders.CausationId, command.CommandId),
        ];
        if (call.TraceParent is { } traceParent)
        {
            headers.Add(new(EventHeaders.TraceParent, traceParent));
        }
        return exchange.SendAsync(new OutgoingRequest(method, http.Url, http.Headers, headers, body), command, cancellationToken);
    }
}
