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
                return Results.Json(new { status = "unhealthy", state = control.State, failing = new[] { "runner" } }, statusCode: 503);
            }
            var checks = await health.RunAsync(components, ct);
            var failing = checks.Where(c => !c.Ok).ToList();
            foreach (var check in failing)
            {
                OperationsLog.Unhealthy(logger, check.Name, check.Error ?? "-");
            }
            return Results.Json(new
            {
                status = failing.Count == 0 ? "healthy" : "unhealthy",
                failing = failing.Select(c => c.Name),
                checks = checks.ToDictionary(c => c.Name, c => new { ok = c.Ok, error = c.Error }),
            }, statusCode: failing.Count == 0 ? 200 : 503);
        });

        app.MapGet("/ready", async (CancellationToken ct) =>
        {
            // Not ready the moment a drain or shutdown begins, without waiting for a probe.
            if (!control.AcceptingWork || control.Components is not { } components)
            {
                return Results.Json(new { ready = false, state = control.State }, statusCode: 503);
            }
            var failing = (await health.RecentAsync(components, s_readyProbeMaxAge, ct)).Where(c => !c.Ok).Select(c => c.Name).ToList();
            // A saga replica takes work once it holds what it took at its start, restored and reading.
            if (components.Sagas is { Settled: false })
            {
                failing.Add("partitions");
            }
            return Results.Json(new { ready = failing.Count == 0, state = control.State, failing }, statusCode: failing.Count == 0 ? 200 : 503);
        });

        app.MapMetrics("/metrics");

        app.MapGet("/info", () => control.Components is null
            ? Results.Json(new { state = control.State }, statusCode: 503)
            : Results.Json(info.Describe()));

        var admin = app.MapGroup("/admin");
        admin.AddEndpointFilter(async (context, next) =>
        {
            var path = context.HttpContext.Request.Path.Value ?? "/admin";
            if (!token.Enabled)
            {
                OperationsLog.AdminRefused(logger, path, "admin endpoints are disabled");
                return Results.Json(new { error = "admin endpoints are disabled: set RUNNER_ADMIN_TOKEN_FILE to enable them" }, statusCode: 403);
            }
            if (!token.Accepts(context.HttpContext.Request.Headers.Authorization))
            {
                OperationsLog.AdminRefused(logger, path, "missing or wrong bearer token");
                context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
                return Results.Json(new { error = "a valid bearer token is required" }, statusCode: 401);
            }
            if (control.Components is null)
            {
                return Results.Json(new { error = "runner is not running", state = control.State }, statusCode: 503);
            }
            return await next(context);
        });

        admin.MapPost("/drain", () =>
        {
            var status = control.BeginDrain("admin");
            return Results.Json(status, statusCode: status.State == "drained" ? 200 : 202);
        });
        admin.MapGet("/drain", () => Results.Json(control.Status()));
        admin.MapPost("/resume", async (CancellationToken ct) => await control.ResumeAsync(ct)
            ? Results.Json(control.Status())
            : Results.Json(new { error = "not draining", state = control.State }, statusCode: 409));
        InstanceEndpoints.Map(admin, control, TimeProvider.System);
        StatusEndpoints.Map(admin, control, throughput, TimeProvider.System);
        AdminUiEndpoints.Map(app);
        admin.MapPost("/reload", async (bool? force, CancellationToken ct) =>
        {
            var outcome = await control.ReloadAsync(ct, force == true);
            if (!outcome.Applied && outcome.Check is { } check)
            {
                return Results.Json(new
                {
                    applied = false,
                    version = outcome.Version,
                    error = "replaying live instances through the changed scripts diverges from what they did: declare the change in the manifest (version and migrate: true), or force the reload with ?force=true",
                    check,
                }, statusCode: 422);
            }
            return outcome.Applied
                ? Results.Json(outcome)
                : Results.Json(new
                {
                    applied = false,
                    version = outcome.Version,
                    errors = outcome.Errors.Select(e => new { file = e.File, line = e.Line, column = e.Column, message = e.Message, text = e.ToString() }),
                }, statusCode: 422);
        });
    }
}
