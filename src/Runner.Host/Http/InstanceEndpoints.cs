using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Runner.Host.Instances;
using Runner.Host.Operations;
using Runner.Sagas.Instances;

namespace Runner.Host.Http;

/// <summary>
/// <c>GET /admin/instances</c> and <c>GET /admin/instances/{saga}/{key}</c>: answered by asking the
/// saga replicas over NATS, so whichever replica serves the request, the owner of each partition
/// answers for it.
/// </summary>
internal static class InstanceEndpoints
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(3);

    /// <summary>Every query value, repeated names kept (several <c>id</c>s).</summary>
    private static IEnumerable<KeyValuePair<string, string>> Pairs(HttpRequest request) =>
        request.Query.SelectMany(q => q.Value.Select(v => KeyValuePair.Create(q.Key, v ?? "")));

    public static void Map(RouteGroupBuilder admin, RunnerControl control, TimeProvider time)
    {
        admin.MapGet("/instances", async (HttpRequest request, CancellationToken ct) =>
        {
            var components = control.Components!;
            var (filter, error) = InstanceRequests.Filter(request.Query.Select(q => KeyValuePair.Create(q.Key, q.Value.ToString())), time.GetUtcNow());
            if (filter is null)
            {
                return HttpJson.Error(error, 400);
            }
            try
            {
                var list = await InstanceQueryClient.ListAsync(components.Nats, components.Settings.SagaOptions(), filter, s_wait, ct);
                return HttpJson.Reply(new InstanceListHttpReply(list.Instances, list.Truncated, list.Answered.Count, list.Missing), HttpJsonContext.Wire.InstanceListHttpReply);
            }
            catch (InstanceQueryException ex)
            {
                return HttpJson.Error(ex.Message, 400);
            }
        });
        admin.MapGet("/instances/{saga}/{key}", async (string saga, string key, string? tenant, CancellationToken ct) =>
        {
            var components = control.Components!;
            var options = components.Settings.SagaOptions();
            var replies = await InstanceLookup.ShowAsync(components.Nats, options, saga, key, tenant, s_wait, ct);
            return replies.Count switch
            {
                0 => HttpJson.Error($"no instance {saga}/{key}{(tenant is null ? "" : $" of tenant {tenant}")} (or no replica owning its partition answered)", 404),
                1 => Results.Json(replies[0], InstanceJsonContext.Default.InstanceShowReply),
                _ => HttpJson.Reply(new AmbiguousInstanceReply($"{replies.Count} tenants have an instance {saga}/{key}: add ?tenant=", replies.Select(r => r.Summary!.Tenant)),
                    HttpJsonContext.Wire.AmbiguousInstanceReply, 409),
            };
        });
        admin.MapGet("/quarantine", async (HttpRequest request, CancellationToken ct) =>
        {
            var components = control.Components!;
            var (filter, _, error) = QuarantineRequests.Filter(Pairs(request), time.GetUtcNow());
            if (filter is null)
            {
                return HttpJson.Error(error, 400);
            }
            var (entries, truncated) = await Sagas.Quarantine.QuarantineClient.ListAsync(components.Nats, components.Settings.SagaOptions().ConsumerPrefix, filter, ct);
            return HttpJson.Reply(new QuarantineListReply(entries, truncated), HttpJsonContext.Wire.QuarantineListReply);
        });
        admin.MapPost("/quarantine/{action}", async (string action, HttpRequest request, CancellationToken ct) =>
        {
            if (action is not (Sagas.Quarantine.QuarantineService.Requeue or Sagas.Quarantine.QuarantineService.Discard))
            {
                return HttpJson.Error($"unknown action '{action}': requeue or discard", 404);
            }
            var components = control.Components!;
            var dryRun = request.Query.TryGetValue("dry_run", out var flag) && bool.TryParse(flag.ToString(), out var d) && d;
            var (filter, all, error) = QuarantineRequests.Filter(Pairs(request).Where(p => p.Key != "dry_run"), time.GetUtcNow());
            if (filter is null)
            {
                return HttpJson.Error(error, 400);
            }
            if (filter.SelectsEverything && !all)
            {
                return HttpJson.Error($"{action} needs id= or a filter; all=true to {action} every record", 400);
            }
            var results = await Sagas.Quarantine.QuarantineClient.ActAsync(components.Nats, components.Settings.SagaOptions().ConsumerPrefix, action, filter, dryRun, ct);
            return HttpJson.Reply(new QuarantineActReply(dryRun, results), HttpJsonContext.Wire.QuarantineActReply);
        });
        admin.MapPost("/instances/{saga}/{key}/reset", async (string saga, string key, long? to, string? tenant, string? confirm, CancellationToken ct) =>
        {
            if (to is null)
            {
                return HttpJson.Error("to= (the version to go back to) is required", 400);
            }
            var components = control.Components!;
            var result = confirm is null
                ? await InstanceReset.PreviewAsync(components.Nats, components.Settings.SagaOptions(), components.Manifests, saga, key, tenant, to.Value, s_wait, ct)
                : await InstanceReset.ApplyAsync(components.Nats, components.Settings.SagaOptions(), components.Manifests, saga, key, tenant, to.Value, confirm, s_wait, ct);
            var status = result.Error is null ? 200 : 409;
            return HttpJson.Reply(new ResetReply(confirm is null, result.Applied, result.Error, result.Preview, result.After), HttpJsonContext.Wire.ResetReply, status);
        });
        admin.MapPost("/instances/{saga}/{key}/{action}", async (string saga, string key, string action, string? tenant, CancellationToken ct) =>
        {
            if (!Sagas.Partitions.PartitionWorker.ControlActions.Contains(action, StringComparer.Ordinal))
            {
                return HttpJson.Error($"unknown action '{action}': resume, skip or cancel", 404);
            }
            var components = control.Components!;
            var result = await InstanceControl.SendAsync(components.Nats, components.Settings.SagaOptions(), action, saga, key, tenant, s_wait, ct);
            var status = result.Outcome switch
            {
                ControlOutcome.Applied => 200,
                ControlOutcome.NotFound => 404,
                ControlOutcome.NotApplied when result.Instance is null => 504,
                _ => 409,
            };
            return HttpJson.Reply(new ControlReply(result.Outcome.ToString().ToLowerInvariant(), result.Message, result.Instance), HttpJsonContext.Wire.ControlReply, status);
        });
    }
}
