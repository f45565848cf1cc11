using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Host.Operations;

namespace Runner.Host.Http;

/// <summary>
/// <c>GET /admin/partitions</c> (every partition's owner, epoch, lag and snapshot, as
/// <c>runner partitions</c> prints them) and <c>GET /admin/throughput</c> (this process's running
/// totals, which the admin page samples to plot rates).
/// </summary>
internal static class StatusEndpoints
{
    private static readonly TimeSpan s_partitionsTimeout = TimeSpan.FromSeconds(10);

    public static void Map(RouteGroupBuilder admin, RunnerControl control, ThroughputCounters throughput, TimeProvider time)
    {
        admin.MapGet("/partitions", async (CancellationToken ct) =>
        {
            var components = control.Components!;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(s_partitionsTimeout);
            try
            {
                var table = await PartitionTable.ReadAsync(new NatsJSContext(components.Nats), components.Settings, time, timeout.Token);
                return table is null
                    ? HttpJson.Error($"no ownership bucket {components.Settings.SagaOptions().OwnershipBucket}: no saga replica has run with this consumer prefix", 404)
                    : HttpJson.Reply(table, HttpJsonContext.Wire.PartitionTable);
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                return HttpJson.Error($"could not read the partitions: {ex.Message}", 503);
            }
        });
        admin.MapGet("/throughput", () => HttpJson.Reply(throughput.Read(control.Settings.WorkerId, time), HttpJsonContext.Wire.ThroughputSample));
    }
}
