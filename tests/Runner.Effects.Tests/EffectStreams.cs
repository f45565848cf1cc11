using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Transitions;
using Runner.Messaging;

namespace Runner.Effects.Tests;

/// <summary>Publishes commands the way the outbox relay does, and reads what effect workers published.</summary>
internal static class EffectStreams
{
    public static CommandMessage Command(string tenant, string effect, string id, object payload, string saga = "orders", string? correlation = null) => new()
    {
        CommandId = id,
        Tenant = tenant,
        Effect = effect,
        Saga = saga,
        CorrelationId = correlation ?? id,
        CausationId = "evt-" + id,
        Payload = JsonSerializer.SerializeToElement(payload),
        CreatedAt = CloudEventEncoder.FormatTime(DateTimeOffset.UtcNow),
    };

    public static async Task PublishAsync(INatsJSContext js, CommandMessage command, string? traceParent = null, CancellationToken cancellationToken = default)
    {
        var headers = new NatsHeaders
        {
            [EventHeaders.TenantId] = command.Tenant,
            [EventHeaders.CorrelationId] = command.CorrelationId,
            [EventHeaders.CausationId] = command.CausationId,
        };
        if (traceParent is not null)
        {
            headers[EventHeaders.TraceParent] = traceParent;
        }
        var ack = await js.PublishAsync(Core.Subjects.Subjects.Command(command.Tenant, command.Effect, command.Pool),
            JsonSerializer.SerializeToUtf8Bytes(command, CoreJsonContext.Default.CommandMessage), headers: headers,
            opts: new NatsJSPubOpts { MsgId = EventHeaders.Encode(command.CommandId) }, cancellationToken: cancellationToken);
        ack.EnsureStored();
    }

    /// <summary>Every message on a stream, in order (subject, JSON body, headers).</summary>
    public static async Task<List<(string Subject, JsonObject Body, NatsHeaders? Headers)>> ReadAsync(INatsJSContext js, string stream, CancellationToken cancellationToken)
    {
        var info = await js.GetStreamAsync(stream, cancellationToken: cancellationToken);
        var total = info.Info.State.Messages;
        var result = new List<(string, JsonObject, NatsHeaders?)>();
        if (total == 0)
        {
            return result;
        }
        var consumer = await js.CreateOrderedConsumerAsync(stream, cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            result.Add((msg.Subject, JsonNode.Parse(Encoding.UTF8.GetString(msg.Data!))!.AsObject(), msg.Headers));
            if (result.Count >= total)
            {
                break;
            }
        }
        return result;
    }

    /// <summary>Deletes every stream (and so every KV bucket) and recreates Runner's streams.</summary>
    public static async Task ResetAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        await DeleteAllAsync(js, cancellationToken);
        await StreamTopology.EnsureAsync(js, new JetStreamSettings(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, cancellationToken);
    }

    /// <summary>Deletes every stream (and so every KV and object bucket).</summary>
    public static async Task DeleteAllAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await foreach (var name in js.ListStreamNamesAsync(cancellationToken: cancellationToken))
        {
            names.Add(name);
        }
        foreach (var name in names)
        {
            await js.DeleteStreamAsync(name, cancellationToken);
        }
    }

    public static async Task<long> CountAsync(INatsJSContext js, string stream, CancellationToken cancellationToken) =>
        (await js.GetStreamAsync(stream, cancellationToken: cancellationToken)).Info.State.Messages;
}
