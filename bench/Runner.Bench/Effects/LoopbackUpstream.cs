using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Runner.Bench.Effects;

/// <summary>
/// The cheapest HTTP upstream Kestrel can be: 200 <c>{"ok":true}</c> at once on 127.0.0.1, no
/// routing, no body read, nothing recorded but a counter and the <c>correlation-id</c> header handed
/// to <see cref="Arrived"/> (the bench's per-instance timeline). It runs in the bench process.
/// </summary>
internal sealed class LoopbackUpstream : IAsyncDisposable
{
    private static readonly byte[] s_body = """{"ok":true}"""u8.ToArray();

    private readonly WebApplication _app;
    private long _requests;

    private LoopbackUpstream(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = new("http://127.0.0.1/");

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>How long each answer waits before it is written (an upstream's own latency); zero by default.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Called with each request's <c>correlation-id</c> header (the saga instance's key).</summary>
    public Action<string>? Arrived { get; set; }

    public static async Task<LoopbackUpstream> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var upstream = new LoopbackUpstream(app);
        app.Run(upstream.HandleAsync);
        await app.StartAsync(cancellationToken);
        upstream.Url = new Uri(app.Urls.Single().TrimEnd('/') + "/");
        return upstream;
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        if (Arrived is { } arrived && context.Request.Headers.TryGetValue("correlation-id", out var key))
        {
            arrived(key.ToString());
        }
        if (Delay > TimeSpan.Zero)
        {
            await Task.Delay(Delay, context.RequestAborted);
        }
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        response.ContentLength = s_body.Length;
        await response.Body.WriteAsync(s_body, context.RequestAborted);
    }

    /// <summary>
    /// What the upstream alone sustains: <paramref name="count"/> GETs from <paramref name="loops"/>
    /// concurrent loops of one HttpClient, stopped after <paramref name="limit"/>. Returns requests/s.
    /// </summary>
    public async Task<(int Requests, double Rate)> SelfTestAsync(int count, int loops, TimeSpan limit, CancellationToken cancellationToken)
    {
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        var next = -1;
        var done = 0;
        var started = Stopwatch.GetTimestamp();
        try
        {
            await Task.WhenAll(Enumerable.Range(0, loops).Select(_ => Task.Run(async () =>
            {
                while (Interlocked.Increment(ref next) < count)
                {
                    using var answer = await client.GetAsync(Url, deadline.Token);
                    answer.EnsureSuccessStatusCode();
                    Interlocked.Increment(ref done);
                }
            }, deadline.Token)));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // the time limit: report what was done
        }
        return (done, done / Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
