using System.Globalization;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Sagas.Ownership;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner partitions</c>: every partition's lease (state, owner, epoch), its lag (messages the
/// owner's consumer has not had acknowledged yet) and its newest snapshot, then the live replicas.
/// Reads the ownership bucket of the deployment the <c>RUNNER_*</c> settings name.
/// </summary>
internal static class PartitionsCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var json = args is ["--json"];
        if (args.Length > 0 && !json)
        {
            Console.Error.WriteLine("usage: runner partitions [--json]");
            return 2;
        }
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var options = settings.SagaOptions();
        await using var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner-partitions" });
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            await nats.ConnectAsync();
            var js = new NatsJSContext(nats);
            var bucket = await OwnershipBucket.OpenExistingAsync(js, options.OwnershipBucket, timeout.Token);
            if (bucket is null)
            {
                Console.Error.WriteLine($"runner: no ownership bucket {options.OwnershipBucket}: no saga replica has run against {settings.NatsUrl} with this consumer prefix");
                return 1;
            }
            var entries = (await bucket.ReadAllAsync(timeout.Token)).ToDictionary(e => e.Key, StringComparer.Ordinal);
            var nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var rows = new List<Row>();
            for (var p = 0; p < settings.Partitions; p++)
            {
                var key = OwnershipBucket.PartitionKey(new PartitionId(p));
                var lease = entries.TryGetValue(key, out var entry) ? OwnershipBucket.Parse(entry.Value, OwnershipJsonContext.Default.LeaseRecord) : null;
                var lag = lease is { State: LeaseRecord.Held } ? await LagAsync(js, settings.JetStream.Streams.Inbox, options.PartitionConsumer(p, lease.Epoch), timeout.Token) : null;
                var snapshot = lease?.Snapshots.FirstOrDefault();
                rows.Add(new Row(p, lease?.State ?? "none", lease?.Owner, lease?.Epoch ?? 0, lease?.Checkpoint ?? 0, lag,
                    snapshot?.Sequence, snapshot is null ? null : (nowMs - snapshot.AtMs) / 1000.0, snapshot?.Bytes));
            }
            var members = entries.Values
                .Where(e => e.Key.StartsWith(OwnershipBucket.MemberPrefix, StringComparison.Ordinal))
                .Select(e => OwnershipBucket.Parse(e.Value, OwnershipJsonContext.Default.MemberRecord))
                .OfType<MemberRecord>()
                .ToList();
            Print(rows, members, json, nowMs);
            return 0;
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException or TimeoutException)
        {
            Console.Error.WriteLine($"runner: could not read the partitions from {settings.NatsUrl}: {ex.Message}");
            return 1;
        }
    }

    private sealed record Row(int Partition, string State, string? Owner, long Epoch, ulong Checkpoint, ulong? Lag, ulong? SnapshotSeq, double? SnapshotAgeSeconds, long? SnapshotBytes);

    private static async Task<ulong?> LagAsync(INatsJSContext js, string inbox, string consumer, CancellationToken cancellationToken)
    {
        try
        {
            var info = (await js.GetConsumerAsync(inbox, consumer, cancellationToken)).Info;
            return info.NumPending + (ulong)info.NumAckPending;
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return null; // being restored, or the owner is gone
        }
    }

    private static void Print(List<Row> rows, List<MemberRecord> members, bool json, long nowMs)
    {
        if (json)
        {
            foreach (var row in rows)
            {
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["partition"] = row.Partition, ["state"] = row.State, ["owner"] = row.Owner, ["epoch"] = row.Epoch,
                    ["checkpoint"] = row.Checkpoint, ["lag"] = row.Lag, ["snapshot_seq"] = row.SnapshotSeq,
                    ["snapshot_age_s"] = row.SnapshotAgeSeconds, ["snapshot_bytes"] = row.SnapshotBytes,
                }));
            }
            return;
        }
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"{"PARTITION",-9}  {"STATE",-8}  {"OWNER",-24}  {"EPOCH",5}  {"CHECKPOINT",10}  {"LAG",7}  {"SNAPSHOT",10}  {"AGE",8}  {"BYTES",10}"));
        foreach (var r in rows)
        {
            Console.WriteLine(string.Create(c,
                $"{r.Partition,-9}  {r.State,-8}  {r.Owner ?? "-",-24}  {r.Epoch,5}  {r.Checkpoint,10}  {(r.Lag is { } l ? l.ToString(c) : "-"),7}  {(r.SnapshotSeq is { } s ? s.ToString(c) : "-"),10}  {(r.SnapshotAgeSeconds is { } a ? a.ToString("F0", c) + "s" : "-"),8}  {(r.SnapshotBytes is { } b ? b.ToString(c) : "-"),10}"));
        }
        Console.WriteLine();
        foreach (var m in members.OrderBy(m => m.Worker, StringComparer.Ordinal))
        {
            var held = rows.Count(r => r.State == LeaseRecord.Held && r.Owner == m.Worker);
            Console.WriteLine(string.Create(c, $"replica {m.Worker}: {held} partitions{(m.Leaving ? ", leaving" : string.Empty)}, last heartbeat {(nowMs - m.WrittenAtMs) / 1000.0:F0}s ago (its clock)"));
        }
    }
}
