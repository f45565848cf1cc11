using System.Text.Json;
using NATS.Client.Core;

namespace Runner.Sagas.Quarantine;

/// <summary>
/// Asks every runner process for its quarantine records (see <see cref="QuarantineService"/>) and
/// acts on them: from the CLI and from the admin endpoints of any replica.
/// </summary>
internal static class QuarantineClient
{
    /// <summary>How long a list waits after the last answer for another one (replicas without a matching record stay silent).</summary>
    private static readonly TimeSpan s_quiet = TimeSpan.FromMilliseconds(1500);

    public static async Task<(List<QuarantineEntry> Entries, bool Truncated)> ListAsync(INatsConnection nats, string prefix, QuarantineFilter filter, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(filter, QuarantineJsonContext.Default.QuarantineFilter);
        var entries = new List<QuarantineEntry>();
        var truncated = false;
        await foreach (var msg in nats.RequestManyAsync<byte[], byte[]>(QuarantineService.ListSubject(prefix), body,
            replyOpts: new NatsSubOpts { Timeout = TimeSpan.FromSeconds(10), IdleTimeout = s_quiet, ThrowIfNoResponders = false }, cancellationToken: cancellationToken))
        {
            if (msg.HasNoResponders)
            {
                break;
            }
            if (msg.Data is { Length: > 0 } data && JsonSerializer.Deserialize(data, QuarantineJsonContext.Default.QuarantineListReply) is { } reply)
            {
                entries.AddRange(reply.Entries);
                truncated |= reply.Truncated;
            }
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Record.Time, b.Record.Time));
        if (entries.Count > filter.Limit)
        {
            entries.RemoveRange(filter.Limit, entries.Count - filter.Limit);
            truncated = true;
        }
        return (entries, truncated);
    }

    /// <summary>
    /// Lists what <paramref name="filter"/> selects, then asks each replica holding some of it to
    /// act on exactly those records (by id), and waits for every one of them to answer.
    /// </summary>
    public static async Task<List<QuarantineActResult>> ActAsync(INatsConnection nats, string prefix, string action, QuarantineFilter filter, bool dryRun, CancellationToken cancellationToken)
    {
        var (entries, _) = await ListAsync(nats, prefix, filter, cancellationToken);
        var results = new List<QuarantineActResult>();
        foreach (var group in entries.GroupBy(e => e.Worker, StringComparer.Ordinal))
        {
            var request = new QuarantineActRequest
            {
                Worker = group.Key,
                Action = action,
                DryRun = dryRun,
                Filter = new QuarantineFilter { Ids = [.. group.Select(e => e.Id)], Limit = group.Count() },
            };
            var reply = await nats.RequestAsync<byte[], byte[]>(QuarantineService.ActSubject(prefix),
                JsonSerializer.SerializeToUtf8Bytes(request, QuarantineJsonContext.Default.QuarantineActRequest),
                replyOpts: new NatsSubOpts { Timeout = TimeSpan.FromSeconds(60) }, cancellationToken: cancellationToken);
            if (reply.Data is { Length: > 0 } data && JsonSerializer.Deserialize(data, QuarantineJsonContext.Default.QuarantineActReply) is { } answer)
            {
                results.AddRange(answer.Results);
            }
        }
        return results;
    }
}
