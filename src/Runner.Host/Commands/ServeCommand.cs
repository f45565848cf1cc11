using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Prometheus;
using Runner.Effects;
using Runner.Host.Http;
using Runner.Host.Operations;
using Runner.Host.Service;
using Runner.Host.Settings;
using Runner.Sagas;

namespace Runner.Host.Commands;

internal static class ServeCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        AdminToken token;
        try
        {
            token = settings.AdminTokenFile is { } file ? AdminToken.FromFile(file) : AdminToken.Disabled;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine($"runner: RUNNER_ADMIN_TOKEN_FILE: {ex.Message}");
            return 2;
        }

        await using var app = Build(args, settings, token);
        try
        {
            await app.RunAsync(cancellationToken);
            return 0;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
#pragma warning disable CA1031 // Start-up failures of any kind end the process with a message, not a stack dump.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"runner: failed to start: {ex.Message}");
            return 1;
        }
    }

    /// <summary>The service with its HTTP endpoints on Kestrel, telemetry and logging.</summary>
    internal static WebApplication Build(string[] args, RunnerSettings settings, AdminToken token)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args });
        builder.WebHost.UseUrls(string.Join(';', settings.HttpUrls));
        ConfigureLogging(builder.Logging, settings);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.ShutdownTimeout + TimeSpan.FromSeconds(10));
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<RunnerControl>();
        builder.Services.AddSingleton<HealthProbe>();
        builder.Services.AddSingleton<InfoReport>();
        builder.Services.AddSingleton<IInfoContributor, SliceInfoContributor>();
        builder.Services.AddSingleton<IInfoContributor, BreakerInfoContributor>();
        builder.Services.AddSingleton<ThroughputCounters>();
        builder.Services.AddHostedService<RunnerService>();
        AddTracing(builder.Services);

        var app = builder.Build();
        var control = app.Services.GetRequiredService<RunnerControl>();
        // Runner's meters go through the bridge (proper names and types); every other meter, the
        // .NET runtime's among them, through prometheus-net's own adapter, except the NATS
        // client's measurements of each message (see ExportsFromAdapter). Both listen from here on,
        // before the service takes any work: prometheus-net would start its adapter at the first
        // scrape, and lose what was measured before it (an upstream's first calls).
        Metrics.SuppressDefaultMetrics(new SuppressDefaultMetricOptions { SuppressMeters = true });
        app.Lifetime.ApplicationStopped.Register(MeterAdapter.StartListening(new MeterAdapterOptions { InstrumentFilterPredicate = ExportsFromAdapter }).Dispose);
        app.Lifetime.ApplicationStopped.Register(new MeterBridge(Metrics.DefaultRegistry).Dispose);
        _ = new RunnerMetrics(control, TimeProvider.System, Metrics.DefaultRegistry);
        // Resolved here, before the service starts, so that its totals count from the first transition.
        var throughput = app.Services.GetRequiredService<ThroughputCounters>();
        OperationsEndpoints.Map(app, control, app.Services.GetRequiredService<HealthProbe>(), token, app.Services.GetRequiredService<InfoReport>(), throughput);
        OperationsLog.Listening(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ServeCommand)),
            string.Join(", ", settings.HttpUrls), token.Enabled ? "enabled" : "disabled (no RUNNER_ADMIN_TOKEN_FILE)");
        return app;
    }

    private static void ConfigureLogging(ILoggingBuilder logging, RunnerSettings settings)
    {
        logging.ClearProviders();
        // Every line logged inside a span carries its trace and span id; the stages add the
        // tenant, saga and correlation id of the message in hand as a scope of their own.
        logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        if (settings.LogFormat == "json")
        {
            logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
        }
    }

    /// <summary>
    /// What prometheus-net's meter adapter exports: every meter but Runner's own (the bridge has them)
    /// and the NATS client's instruments of each message sent or received (counts, bytes, a duration
    /// per operation). Those were measured on every publish, ack and delivery, several per event,
    /// the adapter making label strings for each, for series Runner's own counters already give per
    /// stage. The client's reconnects, dropped messages and subscriptions stay.
    /// </summary>
    internal static bool ExportsFromAdapter(System.Diagnostics.Metrics.Instrument instrument) =>
        !instrument.Meter.Name.StartsWith(MeterBridge.Prefix, StringComparison.Ordinal)
        && !(instrument.Meter.Name == NatsClientMeter && s_natsPerMessage.Contains(instrument.Name))
        && !(instrument.Meter.Name == HttpClientMeter && s_httpPerRequest.Contains(instrument.Name));

    /// <summary>The meter of .NET's HTTP client, which the http effects call upstreams with.</summary>
    internal const string HttpClientMeter = "System.Net.Http";

    /// <summary>
    /// The HTTP client's counts that move on every request: requests in flight (+1 and −1), connections by state (a
    /// connection goes from idle to active and back on each request) and the time each request queued for a
    /// connection. At several measurements per effect call, each given label strings by the adapter, they were about
    /// a thirtieth of the runner's CPU per saga round trip. What they would tell is in Runner's own series
    /// (<c>runner_effect_duration_seconds</c> and its outcomes, the breakers, <c>/info</c>); the request duration
    /// by host and status stays.
    /// </summary>
    private static readonly HashSet<string> s_httpPerRequest = new(StringComparer.Ordinal)
    {
        "http.client.active_requests",
        "http.client.open_connections",
        "http.client.request.time_in_queue",
    };

    /// <summary>The NATS client's meter.</summary>
    internal const string NatsClientMeter = "NATS.Net";

    private static readonly HashSet<string> s_natsPerMessage = new(StringComparer.Ordinal)
    {
        "messaging.client.published.messages",
        "messaging.client.consumed.messages",
        "messaging.client.operation.duration",
        "nats.client.sent.bytes",
        "nats.client.received.bytes",
    };

    /// <summary>
    /// Spans of every stage, recorded and exported over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
    /// (or <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>) is set; the exporter reads the other
    /// <c>OTEL_*</c> variables. Unset, no span is recorded, for none would go anywhere: each
    /// message's log lines still carry its trace id (<see cref="Runner.Messaging.LogScope"/>) and
    /// every hop still sends the traceparent on.
    /// </summary>
    private static void AddTracing(IServiceCollection services)
    {
        var otlp = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
        if (!otlp)
        {
            return;
        }
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(
                serviceName: Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") is { Length: > 0 } name ? name : "runner",
                serviceVersion: InfoReport.Version))
            .WithTracing(tracing =>
            {
                tracing.AddSource(SagasTelemetry.ActivitySourceName, EffectsTelemetry.ActivitySourceName);
                tracing.AddOtlpExporter();
            });
    }
}
