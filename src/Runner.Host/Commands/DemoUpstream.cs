using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Runner.Host.Commands;

/// <summary>
/// The small upstream the demo's effects call, on loopback: inventory, payments, shipping and a
/// platform gateway. It behaves like real services do, so the demo shows each path: a card over
/// 1,000 is declined (402), an amount of 80 fails once with 503 before it succeeds (a retry), and
/// an amount of 777 hangs long enough for the order's payment deadline to fire first.
/// </summary>
internal sealed class DemoUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);

    private DemoUpstream(WebApplication app)
    {
        _app = app;
    }

    public Uri Url { get; private set; } = new("http://127.0.0.1/");

    /// <summary>Each request as it is answered: method, path, idempotency key, status.</summary>
    public event Action<string>? Answered;

    public int Calls(string pathPrefix) => _calls.Where(c => c.Key.StartsWith(pathPrefix, StringComparison.Ordinal)).Sum(c => c.Value);

    public static async Task<DemoUpstream> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var upstream = new DemoUpstream(app);
        app.MapPost("/inventory/reservations", (HttpContext http) => upstream.AnswerAsync(http, body =>
            (201, new JsonObject { ["reservation_id"] = "res-" + body["order_id"] })));
        app.MapPost("/inventory/releases", (HttpContext http) => upstream.AnswerAsync(http, body =>
            (200, new JsonObject { ["released"] = body["reservation_id"]?.DeepClone() })));
        app.MapPost("/payments/charges", (HttpContext http) => upstream.ChargeAsync(http));
        app.MapPost("/payments/refunds", (HttpContext http) => upstream.AnswerAsync(http, body =>
            (201, new JsonObject { ["refund"] = "rf-" + body["order_id"] })));
        app.MapPost("/shipping/shipments", (HttpContext http) => upstream.AnswerAsync(http, body =>
            (201, new JsonObject { ["tracking"] = "trk-" + body["order_id"] })));
        app.MapPost("/gateway/commands", (HttpContext http) => upstream.AnswerAsync(http, _ =>
            (202, new JsonObject { ["accepted"] = true })));
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.Url = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        return upstream;
    }

    private async Task ChargeAsync(HttpContext http)
    {
        var body = await ReadAsync(http);
        var amount = body["amount"]?.GetValue<double>() ?? 0;
        var key = http.Request.Headers["Idempotency-Key"].ToString();
        var call = _calls.AddOrUpdate("/payments/charges#" + key, 1, (_, n) => n + 1);
        if (amount == 777)
        {
            await Task.Delay(TimeSpan.FromSeconds(8), http.RequestAborted);
        }
        var (status, response) = amount switch
        {
            > 1000 => (402, new JsonObject { ["error"] = "card_declined", ["message"] = "amount over the demo card limit" }),
            80 when call == 1 => (503, new JsonObject { ["error"] = "payments briefly unavailable" }),
            _ => (201, new JsonObject { ["reference"] = "ch-" + body["order_id"] }),
        };
        await WriteAsync(http, status, response, key);
    }

    private async Task AnswerAsync(HttpContext http, Func<JsonObject, (int Status, JsonObject Body)> answer)
    {
        var body = await ReadAsync(http);
        var key = http.Request.Headers["Idempotency-Key"].ToString();
        _calls.AddOrUpdate(http.Request.Path + "#" + key, 1, (_, n) => n + 1);
        var (status, response) = answer(body);
        await WriteAsync(http, status, response, key);
    }

    private static async Task<JsonObject> ReadAsync(HttpContext http) =>
        await JsonNode.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted) as JsonObject ?? [];

    private async Task WriteAsync(HttpContext http, int status, JsonObject body, string key)
    {
        http.Response.StatusCode = status;
        await http.Response.WriteAsJsonAsync(body, Http.HttpJsonContext.Wire.JsonObject, cancellationToken: http.RequestAborted);
        var tenant = http.Request.Headers["tenant-id"].ToString();
        if (tenant.Length == 0)
        {
            tenant = http.Request.Headers["x-tenant-id"].ToString();
        }
        Answered?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"{http.Request.Method} {http.Request.Path} tenant={tenant} Idempotency-Key={key} -> {status} {(HttpStatusCode)status}"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
