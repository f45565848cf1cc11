using System.Text.Json;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using Runner.Core.Ids;
using Runner.Storage;

namespace Runner.Sagas.Instances;

/// <summary>
/// Answers instance queries over NATS for the partitions this replica runs, so that any replica
/// (or the CLI, from anywhere with access to NATS) can inspect any instance: an instance lives on
/// the replica that owns its partition. Every saga replica subscribes to both subjects; a list
/// request is answered by each replica for its own partitions (the asker gathers until every
/// partition has answered), a show request only by the owner of the instance's partition.
/// Answers are reads of the local store, never changes.
/// </summary>
/// <param name="owned">The partitions this replica runs now, with the epoch it holds each at and its checkpoint.</param>
internal sealed class InstanceQueryService(
    INatsConnection nats,
    LmdbStore store,
    SagaRuntimeOptions options,
    Func<IReadOnlyList<(PartitionId Partition, long Epoch, ulong Checkpoint)>> owned,
    ILogger logger)
{
    public static string ListSubject(SagaRuntimeOptions options) => $"{options.ConsumerPrefix}.admin.instances.list";

    public static string ShowSubject(SagaRuntimeOptions options) => $"{options.ConsumerPrefix}.admin.instances.show";

    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(ServeAsync(ListSubject(options), AnswerList, cancellationToken), ServeAsync(ShowSubject(options), AnswerShow, cancellationToken));

    private async Task ServeAsync(string subject, Func<byte[], byte[]?> answer, CancellationToken cancellationToken)
    {
        await foreach (var msg in nats.SubscribeAsync<byte[]>(subject, cancellationToken: cancellationToken))
        {
            if (msg.ReplyTo is null)
            {
                continue;
            }
            byte[]? reply;
            try
            {
                reply = answer(msg.Data ?? []);
            }
            catch (JsonException ex)
            {
                reply = Error($"request is not valid JSON: {ex.Message}");
            }
            if (reply is not null)
            {
                await msg.ReplyAsync(reply, cancellationToken: cancellationToken);
            }
        }
    }

    private byte[]? AnswerList(byte[] body)
    {
        var filter = JsonSerializer.Deserialize(body, InstanceJsonContext.Default.InstanceFilter) ?? new InstanceFilter();
        if (filter.Validate() is { } error)
        {
            return Error(error);
        }
        var partitions = owned();
        if (partitions.Count == 0)
        {
            return null; // nothing to answer for: stay silent rather than cost the asker a message
        }
        var (instances, truncated) = InstanceQueries.List(store, partitions.Select(p => p.Partition), filter);
        return JsonSerializer.SerializeToUtf8Bytes(new InstanceListReply
        {
            Worker = options.WorkerId,
            Partitions = [.. partitions.Select(p => new AnsweredPartition(p.Partition.Value, p.Epoch))],
            Instances = instances,
            Truncated = truncated,
        }, InstanceJsonContext.Default.InstanceListReply);
    }

    private byte[]? AnswerShow(byte[] body)
    {
        var request = JsonSerializer.Deserialize(body, InstanceJsonContext.Default.InstanceShowRequest);
        if (request is null)
        {
            return null;
        }
        var instance = new InstanceId(new TenantId(request.Tenant), new SagaName(request.Saga), new CorrelationKey(request.Key));
        var partition = Partitioner.PartitionOf(instance, options.Partitions);
        var held = owned().FirstOrDefault(p => p.Partition == partition);
        if (held.Epoch == 0)
        {
            return null; // another replica owns it
        }
        var found = InstanceQueries.Show(store, partition, instance);
        InstancesLog.Shown(logger, request.Tenant, request.Saga, request.Key, partition.Value, found is not null);
        return JsonSerializer.SerializeToUtf8Bytes(found is { } f
            ? new InstanceShowReply
            {
                Worker = options.WorkerId,
                Partition = partition.Value,
                Epoch = held.Epoch,
                Found = true,
                Summary = f.Summary,
                State = f.Record.State,
                Timers = f.Record.Timers,
                Outbox = f.Outbox,
                History = f.History,
                Parked = f.Record.Parked,
                Held = f.Held,
                Checkpoint = held.Checkpoint,
            }
            : new InstanceShowReply { Worker = options.WorkerId, Partition = partition.Value, Epoch = held.Epoch, Found = false, Checkpoint = held.Checkpoint },
            InstanceJsonContext.Default.InstanceShowReply);
    }

    private static byte[] Error(string message) =>
        JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["error"] = message }, Core.CoreJsonContext.Default.DictionaryStringString);
}
