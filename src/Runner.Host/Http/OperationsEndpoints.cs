using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;
using Runner.Host.Operations;

namespace Runner.Host.Http;

/// <summary>
/// The HTTP surface: <c>/health</c>, <c>/ready</c>, <c>/metrics</c> and <c>/info</c> for anyone
/// who can reach the port, <c>/admin/*</c> only with the bearer token — except the admin page's
/// own files (<c>/admin/ui/</c>), whose data calls carry the token.
/// </summary>
internal static class OperationsEndpoints
{
    /// <summary>How old a health result <c>/ready</c> may answer from; <c>/health</c> always probes.</summary>
    private static readonly TimeSpan s_readyProbeMaxAge = TimeSpan.FromSeconds(1);

    public static void Map(WebApplication app, RunnerControl control, HealthProbe health, AdminToken token, InfoReport info, ThroughputCounters throughput)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OperationsEndpoints));

        app.MapGet("/health", async (CancellationToken ct) =>
        {
            if (control.Components is not { } components)
            {
                return HttpJson.Reply(new HealthDownReply("unhealthy", control.State, ["runner"]), HttpJsonContext.Wire.HealthDownReply, 503);
            }
            var checks = await health.RunAsync(components, ct);
            var failing = checks.Where(c => !c.Ok).ToList();
            foreach (var check in failing)
            {
                OperationsLog.Unhealthy(logger, check.Name, check.Error ?? "-");
            }
            return HttpJson.Reply(
                new HealthReply(
                    failing.Count == 0 ? "healthy" : "unhealthy",
                    failing.Select(c => c.Name),
                    checks.ToDictionary(c => c.Name, c => new HealthCheckReply(c.Ok, c.Error))),
                HttpJsonContext.Wire.HealthReply,
                failing.Count == 0 ? 200 : 503);
        });

        app.MapGet("/ready", async (CancellationToken ct) =>
        {
            // Not ready the moment a drain or shutdown begins, without waiting for a probe.
            if (!control.AcceptingWork || control.Components is not { } components)
            {
                return HttpJson.Reply(new ReadyReply(false, control.State, null), HttpJsonContext.Wire.ReadyReply, 503);
            }
            var failing = (await health.RecentAsync(components, s_readyProbeMaxAge, ct)).Where(c => !c.Ok).Select(c => c.Name).ToList();
            // A saga replica takes work once it holds what it took at its start, restored and reading.
            if (components.Sagas is { Settled: false })
            {
                failing.Add("partitions");
            }
            return HttpJson.Reply(new ReadyReply(failing.Count == 0, control.State, failing), HttpJsonContext.Wire.ReadyReply, failing.Count == 0 ? 200 : 503);
        });

        app.MapMetrics("/metrics");

        app.MapGet("/info", () => control.Components is null
            ? HttpJson.Reply(new StateReply(control.State), HttpJsonContext.Wire.StateReply, 503)
            : HttpJson.Reply(info.Describe(), HttpJsonContext.Wire.JsonObject));

        var admin = app.MapGroup("/admin");
        admin.AddEndpointFilter(async (context, next) =>
        {
            var path = context.HttpContext.Request.Path.Value ?? "/admin";
            if (!token.Enabled)
            {
                OperationsLog.AdminRefused(logger, path, "admin endpoints are disabled");
                return HttpJson.Error("admin endpoints are disabled: set RUNNER_ADMIN_TOKEN_FILE to enable them", 403);
            }
            if (!token.Accepts(context.HttpContext.Request.Headers.Authorization))
            {
                OperationsLog.AdminRefused(logger, path, "missing or wrong bearer token");
                context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
                return HttpJson.Error("a valid bearer token is required", 401);
            }
            if (control.Components is null)
            {
                return HttpJson.Error("runner is not running", control.State, 503);
            }
            return await next(context);
        });

        admin.MapPost("/drain", () =>
        {
            var status = control.BeginDrain("admin");
            return HttpJson.Reply(status, HttpJsonContext.Wire.DrainStatus, status.State == "drained" ? 200 : 202);
        });
        admin.MapGet("/drain", () => HttpJson.Reply(control.Status(), HttpJsonContext.Wire.DrainStatus));
        admin.MapPost("/resume", async (CancellationToken ct) => await control.ResumeAsync(ct)
            ? HttpJson.Reply(control.Status(), HttpJsonContext.Wire.DrainStatus)
            : HttpJson.Error("not draining", control.State, 409));
        InstanceEndpoints.Map(admin, control, TimeProvider.System);
        StatusEndpoints.Map(admin, control, throughput, TimeProvider.System);
        AdminUiEndpoints.Map(app);
        admin.MapPost("/reload", async (bool? force, CancellationToken ct) =>
        {
            var outcome = await control.ReloadAsync(ct, force == true);
            if (!outcome.Applied && outcome.Check is { } check)
            {
                return HttpJson.Reply(
                    new ReloadDivergedReply(false, outcome.Version,
                        "replaying live instances through the changed scripts diverges from what they did: declare the change in the manifest (version and migrate: true), or force the reload with ?force=true",
                        check),
                    HttpJsonContext.Wire.ReloadDivergedReply, 422);
            }
            return outcome.Applied
                ? HttpJson.Reply(outcome, HttpJsonContext.Wire.ReloadOutcome)
                : HttpJson.Reply(
                    new ReloadInvalidReply(false, outcome.Version, outcome.Errors.Select(e => new ReloadErrorReply(e.File, e.Line, e.Column, e.Message, e.ToString()))),
                    HttpJsonContext.Wire.ReloadInvalidReply, 422);
        });
    }
}
