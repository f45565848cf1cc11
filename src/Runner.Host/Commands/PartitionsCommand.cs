using System.Globalization;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Host.Operations;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner partitions</c>: every partition's lease (state, owner, epoch), its lag and its newest
/// snapshot, then the live replicas (<see cref="PartitionTable"/>, which <c>GET /admin/partitions</c>
/// answers too). Reads the ownership bucket of the deployment the <c>RUNNER_*</c> settings name.
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
        await using var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner-partitions" });
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            await nats.ConnectAsync();
            var table = await PartitionTable.ReadAsync(new NatsJSContext(nats), settings, TimeProvider.System, timeout.Token);
            if (table is null)
            {
                Console.Error.WriteLine($"runner: no ownership bucket {settings.SagaOptions().OwnershipBucket}: no saga replica has run against {settings.NatsUrl} with this consumer prefix");
                return 1;
            }
            Print(table, json);
            return 0;
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException or TimeoutException)
        {
            Console.Error.WriteLine($"runner: could not read the partitions from {settings.NatsUrl}: {ex.Message}");
            return 1;
        }
    }

    private static void Print(PartitionTable table, bool json)
    {
        if (json)
        {
            foreach (var row in table.Partitions)
            {
                Console.WriteLine(JsonSerializer.Serialize(row, Http.HttpJsonContext.Default.PartitionRow));
            }
            return;
        }
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"{"PARTITION",-9}  {"STATE",-8}  {"OWNER",-24}  {"EPOCH",5}  {"CHECKPOINT",10}  {"LAG",7}  {"SNAPSHOT",10}  {"AGE",8}  {"BYTES",10}"));
        foreach (var r in table.Partitions)
        {
            Console.WriteLine(string.Create(c,
                $"{r.Partition,-9}  {r.State,-8}  {r.Owner ?? "-",-24}  {r.Epoch,5}  {r.Checkpoint,10}  {(r.Lag is { } l ? l.ToString(c) : "-"),7}  {(r.SnapshotSeq is { } s ? s.ToString(c) : "-"),10}  {(r.SnapshotAgeSeconds is { } a ? a.ToString("F0", c) + "s" : "-"),8}  {(r.SnapshotBytes is { } b ? b.ToString(c) : "-"),10}"));
        }
        Console.WriteLine();
        foreach (var m in table.Replicas)
        {
            Console.WriteLine(string.Create(c, $"replica {m.Worker}: {m.Partitions} partitions{(m.Leaving ? ", leaving" : string.Empty)}, last heartbeat {m.HeartbeatAgeSeconds:F0}s ago (its clock)"));
        }
    }
}
