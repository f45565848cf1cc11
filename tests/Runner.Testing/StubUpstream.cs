using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Runner.Testing;

/// <summary>One request a <see cref="StubUpstream"/> received; <paramref name="PathAndQuery"/> is the raw (still percent-encoded) request target.</summary>
/// <param name="Headers">Header names are case-insensitive; repeated headers are joined with <c>", "</c>.</param>
internal sealed record StubRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, string Body, DateTimeOffset Time)
{
    /// <summary>The <c>Idempotency-Key</c> header, or null.</summary>
    public string? IdempotencyKey => Headers.GetValueOrDefault("Idempotency-Key");
}

/// <summary>
/// What a <see cref="StubUpstream"/> answers: a status, an optional JSON body (sent as
/// <c>application/json</c>), after an optional delay. A delay or a <see cref="Gate"/> ends early when
/// the client aborts the request or the stub is disposed.
/// </summary>
internal sealed record StubResponse(int Status, string? JsonBody, TimeSpan Delay = default)
{
    /// <summary>Extra response headers, e.g. <c>Location</c> of a redirect.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>When set, the response waits until this task completes (after <see cref="Delay"/>).</summary>
    public Task? Gate { get; init; }

    /// <summary>200 <c>{"ok":true}</c>.</summary>
    public static StubResponse Ok { get; } = new(200, """{"ok":true}""");

    /// <summary>
    /// Holds the call until <paramref name="gate"/> completes (e.g. a <see cref="TaskCompletionSource"/>'s
    /// task), then answers <paramref name="status"/> with <paramref name="jsonBody"/>: for a test that
    /// stops a worker in the middle of a call.
    /// </summary>
    public static StubResponse Hold(Task gate, int status = 200, string? jsonBody = """{"ok":true}""") => new(status, jsonBody) { Gate = gate };
}

/// <summary>
/// A real HTTP upstream for tests: Kestrel on a free 127.0.0.1 port. It records every request in
/// arrival order and answers per path with a programmable responder; unknown paths get 200
/// <c>{"ok":true}</c>.
/// </summary>
/// <example>
/// <code>
/// await using var stub = await StubUpstream.StartAsync(ct);
/// // fail twice, then succeed, for each idempotency key
/// stub.Respond("/charges", (request, call) => call &lt;= 2 ? new StubResponse(503, null) : StubResponse.Ok);
/// // signal that a call arrived, and hold it until released
/// var arrived = new TaskCompletionSource();
/// var release = new TaskCompletionSource();
/// stub.Respond("/slow", (_, _) => { arrived.TrySetResult(); return StubResponse.Hold(release.Task); });
/// </code>
/// </example>
internal sealed class StubUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, Func<StubRequest, int, StubResponse>> _responders = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly List<StubRequest> _requests = [];
    private readonly Dictionary<string, int> _callsPerKey = new(StringComparer.Ordinal);

    private StubUpstream(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Url { get; private set; }

    /// <summary>Every request received so far, in arrival order (a snapshot).</summary>
    public IReadOnlyList<StubRequest> Requests
    {
        get
        {
            lock (_lock)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Starts a stub on a free loopback port.</summary>
    public static async Task<StubUpstream> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var stub = new StubUpstream(app, new Uri("http://127.0.0.1/"));
        app.Run(stub.HandleAsync);
        await app.StartAsync(cancellationToken);
        stub.Url = new Uri(app.Urls.Single().TrimEnd('/') + "/");
        return stub;
    }

    /// <summary>
    /// Answers requests to <paramref name="path"/> (exact, without the query) with
    /// <paramref name="responder"/>, which gets the request and its call number for its
    /// <c>Idempotency-Key</c> (1 for the first; requests without a key are counted together).
    /// </summary>
    public void Respond(string path, Func<StubRequest, int, StubResponse> responder) => _responders[path] = responder;

    /// <summary>How many requests carried this <c>Idempotency-Key</c>.</summary>
    public int CallsFor(string idempotencyKey)
    {
        lock (_lock)
        {
            return _callsPerKey.GetValueOrDefault(idempotencyKey);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var http = context.Request;
        string body;
        using (var reader = new StreamReader(http.Body))
        {
            body = await reader.ReadToEndAsync(aborted.Token);
        }
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in http.Headers)
        {
            headers[name] = values.ToString();
        }
        // The target as sent (still percent-encoded), so tests see exactly what the client wrote.
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? http.Path.Value + http.QueryString.Value;
        var request = new StubRequest(http.Method, target, headers, body, TimeProvider.System.GetUtcNow());
        int call;
        lock (_lock)
        {
            _requests.Add(request);
            var key = request.IdempotencyKey ?? string.Empty;
            call = _callsPerKey.GetValueOrDefault(key) + 1;
            _callsPerKey[key] = call;
        }
        var response = _responders.TryGetValue(http.Path.Value ?? "/", out var responder) ? responder(request, call) : StubResponse.Ok;
        try
        {
            if (response.Delay > TimeSpan.Zero)
            {
                await Task.Delay(response.Delay, aborted.Token);
            }
            if (response.Gate is { } gate)
            {
                await gate.WaitAsync(aborted.Token);
            }
        }
        catch (OperationCanceledException)
        {
            context.Abort();
            return;
        }
        context.Response.StatusCode = response.Status;
        foreach (var (name, value) in response.Headers ?? new Dictionary<string, string>())
        {
            context.Response.Headers[name] = value;
        }
        if (response.JsonBody is { } json)
        {
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = System.Text.Encoding.UTF8.GetByteCount(json);
            await context.Response.WriteAsync(json, aborted.Token);
        }
    }
}
