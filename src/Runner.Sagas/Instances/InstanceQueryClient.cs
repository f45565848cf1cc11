using System.Text.Json;
using NATS.Client.Core;

namespace Runner.Sagas.Instances;

/// <summary>The gathered answer to a list request.</summary>
/// <param name="Instances">What matched, ordered by tenant, saga and key, at most the filter's limit.</param>
/// <param name="Answered">Partitions some replica answered for.</param>
/// <param name="Missing">Partitions no replica answered for within the wait (moving, or no replica runs).</param>
/// <param name="Truncated">More matched than the limit let through.</param>
internal sealed record InstanceList(List<InstanceSummary> Instances, IReadOnlyList<int> Answered, IReadOnlyList<int> Missing, bool Truncated);

/// <summary>A request a replica refused, with its reason.</summary>
internal sealed class InstanceQueryException(string message) : Exception(message);

/// <summary>
/// Asks the saga replicas about instances over NATS (see <see cref="InstanceQueryService"/>): from
/// the HTTP admin endpoints of any replica and from the CLI.
/// </summary>
internal static class InstanceQueryClient
{
    private static readonly TimeSpan s_newerEpochGrace = TimeSpan.FromMilliseconds(250);

    public static async Task<InstanceList> ListAsync(INatsConnection nats, SagaRuntimeOptions options, InstanceFilter filter, TimeSpan wait, CancellationToken cancellationToken)
    {
        if (filter.Validate() is { } invalid)
        {
            throw new InstanceQueryException(invalid);
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(filter, InstanceJsonContext.Default.InstanceFilter);
        var epochs = new Dictionary<int, long>();
        var byPartition = new Dictionary<int, List<InstanceSummary>>();
        var truncated = false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            await foreach (var msg in nats.RequestManyAsync<byte[], byte[]>(InstanceQueryService.ListSubject(options), body,
                replyOpts: new NatsSubOpts { Timeout = wait, ThrowIfNoResponders = false }, cancellationToken: timeout.Token))
            {
                if (msg.HasNoResponders)
                {
                    break; // no saga replica is subscribed at all
                }
                var data = msg.Data ?? [];
                ThrowIfError(data);
                if (data.Length == 0 || JsonSerializer.Deserialize(data, InstanceJsonContext.Default.InstanceListReply) is not { } reply)
                {
                    continue;
                }
                // A partition answered twice (a moving partition: the old owner and the new) keeps the higher epoch's answer.
                foreach (var held in reply.Partitions)
                {
                    if (epochs.TryGetValue(held.Partition, out var seen) && seen >= held.Epoch)
                    {
                        continue;
                    }
                    epochs[held.Partition] = held.Epoch;
                    byPartition[held.Partition] = [.. reply.Instances.Where(i => i.Partition == held.Partition)];
                }
                truncated |= reply.Truncated;
                if (epochs.Count == options.Partitions)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // the wait is over: report what answered
        }
        var instances = byPartition.Values.SelectMany(i => i)
            .OrderBy(i => i.Tenant, StringComparer.Ordinal).ThenBy(i => i.Saga, StringComparer.Ordinal).ThenBy(i => i.Key, StringComparer.Ordinal)
            .ToList();
        if (instances.Count > filter.Limit)
        {
            instances.RemoveRange(filter.Limit, instances.Count - filter.Limit);
            truncated = true;
        }
        var answered = epochs.Keys.Order().ToList();
        var missing = Enumerable.Range(0, options.Partitions).Except(answered).ToList();
        return new InstanceList(instances, answered, missing, truncated);
    }

    /// <summary>The owner's view of the instance, or null when no replica that owns its partition answered within <paramref name="wait"/>.</summary>
    public static async Task<InstanceShowReply?> ShowAsync(INatsConnection nats, SagaRuntimeOptions options, InstanceShowRequest request, TimeSpan wait, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, InstanceJsonContext.Default.InstanceShowRequest);
        InstanceShowReply? best = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            // Normally one replica answers; during a move the old owner may answer too, so once the
            // first answer is in, wait a moment longer for one at a newer epoch. (An idle timeout
            // would also run before the first answer, and give up on a busy owner.)
            await foreach (var msg in nats.RequestManyAsync<byte[], byte[]>(InstanceQueryService.ShowSubject(options), body,
                replyOpts: new NatsSubOpts { Timeout = wait, ThrowIfNoResponders = false }, cancellationToken: timeout.Token))
            {
                if (msg.HasNoResponders)
                {
                    break;
                }
                var data = msg.Data ?? [];
                ThrowIfError(data);
                if (data.Length > 0 && JsonSerializer.Deserialize(data, InstanceJsonContext.Default.InstanceShowReply) is { } reply
                    && (best is null || reply.Epoch > best.Epoch))
                {
                    if (best is null)
                    {
                        timeout.CancelAfter(s_newerEpochGrace);
                    }
                    best = reply;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
        return best;
    }

    private static void ThrowIfError(byte[] data)
    {
        if (data.Length > 0 && data[0] == (byte)'{')
        {
            using var doc = JsonDocument.Parse(data);
            if (doc.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String)
            {
                throw new InstanceQueryException(error.GetString()!);
            }
        }
    }
}
