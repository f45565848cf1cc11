using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>
/// The real runner binary in combined mode with its HTTP endpoints on a free loopback port, a
/// manifest directory of its own, and the sample saga <c>op</c>: each <c>created</c> event commands
/// <c>work.do</c> (an HTTP call to a stub upstream) and the result ends the instance.
/// </summary>
internal sealed class RunnerNode : IAsyncDisposable
{
    public const string Token = "s3cret-admin-token";

    public const string SagaManifest = """
        kind: saga
        name: op
        script: op.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.op.*.created", correlation: "subject[3]" }
        """;

    public static string Script(string version, string effect = "work.do") => $$"""
        'use strict';
        function on_event(state, event, ctx) {
          if (event.type === 'created') {
            return { state: { status: 'working', version: '{{version}}' },
                     commands: [{ effect: '{{effect}}', id: ctx.id('work'), payload: { n: event.data.n, version: '{{version}}' } }] };
          }
          return { state: { status: 'done', version: '{{version}}' }, done: true };
        }
        """;

    public static string Effects(Uri upstream) => $$"""
        kind: effect
        name: work.do
        provider: http
        http: { url: "{{upstream}}work" }
        timeout_ms: 30000
        retry: { max_attempts: 1 }
        """;

    private readonly HttpClient _http;

    private RunnerNode(TempDirectory dir, RunnerProcess process, Dictionary<string, string> environment, HttpClient http)
    {
        Dir = dir;
        Process = process;
        Environment = environment;
        _http = http;
    }

    public TempDirectory Dir { get; }

    public RunnerProcess Process { get; private set; }

    public Dictionary<string, string> Environment { get; }

    /// <summary>The runner this node runs, as <see cref="RunnerProcess.Start"/> takes it: null for <see cref="RunnerProcess.DefaultExecutable"/>.</summary>
    public string? Executable { get; private init; }

    public string ManifestDir => Dir.File("manifests");

    /// <summary>Starts the runner and waits until it is ready (or fails with its output).</summary>
    public static async Task<RunnerNode> StartAsync(
        NatsServerFixture nats,
        Uri upstream,
        CancellationToken cancellationToken,
        bool adminToken = true,
        Action<Dictionary<string, string>>? configure = null,
        bool waitReady = true,
        IReadOnlyDictionary<string, string>? extraManifests = null,
        string? executable = null)
    {
        var dir = new TempDirectory("runner-ops");
        Directory.CreateDirectory(dir.File("manifests"));
        await File.WriteAllTextAsync(dir.File("manifests/op.yaml"), SagaManifest, cancellationToken);
        await File.WriteAllTextAsync(dir.File("manifests/op.js"), Script("v1"), cancellationToken);
        await File.WriteAllTextAsync(dir.File("manifests/effects.yaml"), Effects(upstream), cancellationToken);
        foreach (var (name, text) in extraManifests ?? new Dictionary<string, string>())
        {
            await File.WriteAllTextAsync(dir.File("manifests/" + name), text, cancellationToken);
        }
        var port = NatsServerFixture.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_DATA_DIR"] = dir.File("data"),
            ["RUNNER_MANIFESTS"] = dir.File("manifests"),
            ["RUNNER_MODE"] = "combined",
            ["RUNNER_PARTITIONS"] = "4",
            ["RUNNER_HTTP_URLS"] = $"http://127.0.0.1:{port}",
            ["RUNNER_WORKER_ID"] = "ops-" + Guid.NewGuid().ToString("N")[..8],
        };
        if (adminToken)
        {
            await File.WriteAllTextAsync(dir.File("admin-token"), Token + "\n", cancellationToken);
            environment["RUNNER_ADMIN_TOKEN_FILE"] = dir.File("admin-token");
        }
        configure?.Invoke(environment);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(20) };
        var node = new RunnerNode(dir, RunnerProcess.Start(["serve"], environment, executable), environment, http) { Executable = executable };
        if (waitReady)
        {
            await node.WaitReadyAsync(cancellationToken);
        }
        return node;
    }

    /// <summary>Polls <c>/ready</c> until 200; fails with the runner's output if it exits or never gets there.</summary>
    public async Task WaitReadyAsync(CancellationToken cancellationToken)
    {
        await WaitUntilAsync(async () => (await GetAsync("ready", cancellationToken)).Status == HttpStatusCode.OK, "ready", cancellationToken);
    }

    /// <summary>
    /// The scopes of the one JSON log line (<c>RUNNER_LOG_FORMAT=json</c>) with <paramref name="eventId"/> about
    /// <paramref name="correlationId"/> (any, when null); null while there is none, and fails when there are several.
    /// </summary>
    public JsonArray? ScopesOf(int eventId, string? correlationId = null) =>
        Process.Output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{')).Select(l => JsonNode.Parse(l)!)
            .SingleOrDefault(l => l["EventId"]!.GetValue<int>() == eventId
                && (correlationId is null || l["Scopes"]!.AsArray().Any(s => s?["correlation_id"]?.GetValue<string>() == correlationId)))?["Scopes"]?.AsArray();

    /// <summary>The one value of <paramref name="name"/> among a line's <paramref name="scopes"/> (fails when none or several scopes have it).</summary>
    public static string ScopeValue(JsonArray scopes, string name) => scopes.Select(s => s?[name]?.GetValue<string>()).Single(v => v is not null)!;

    /// <summary>Polls <paramref name="condition"/> until true; on the deadline, fails naming it with the runner's output.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (Process.HasExited)
            {
                Assert.Fail($"runner exited ({Process.ExitCode}) while waiting for {what}:\n{Tail()}");
            }
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            try
            {
                await Task.Delay(50, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"timed out waiting for {what}:\n{Tail()}");
            }
        }
    }

    /// <summary>Polls <c>/admin/instances</c> until <paramref name="count"/> instances of the <c>op</c> saga are done.</summary>
    public Task WaitOpDoneAsync(int count, CancellationToken cancellationToken) =>
        WaitUntilAsync(async () => (await GetAsync("admin/instances?saga=op&status=done", cancellationToken, Token)).Body?["instances"]?.AsArray().Count == count,
            $"{count} op instances done", cancellationToken);

    public string Tail() => Process.Output[Math.Max(0, Process.Output.Length - 6000)..];

    public async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> GetAsync(string path, CancellationToken cancellationToken, string? token = null) =>
        await SendAsync(HttpMethod.Get, path, token, cancellationToken);

    public async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> PostAsync(string path, CancellationToken cancellationToken, string? token = Token) =>
        await SendAsync(HttpMethod.Post, path, token, cancellationToken);

    private async Task<(HttpStatusCode, JsonNode?, string)> SendAsync(HttpMethod method, string path, string? token, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        using var response = await _http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var json = response.Content.Headers.ContentType?.MediaType == "application/json" ? JsonNode.Parse(text) : null;
        return (response.StatusCode, json, text);
    }

    /// <summary>SIGTERM, then waits for the exit code.</summary>
    public async Task<int> TerminateAsync(CancellationToken cancellationToken)
    {
        await Process.TerminateAsync(cancellationToken);
        return await Process.WaitForExitAsync(cancellationToken);
    }

    /// <summary>Starts the runner again on the same data, manifests and port (after it exited).</summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        Process.Dispose();
        Process = RunnerProcess.Start(["serve"], Environment, Executable);
        await WaitReadyAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        Process.Dispose();
        _http.Dispose();
        await Task.CompletedTask;
        Dir.Dispose();
    }

    /// <summary>Deletes every stream so the test starts from an empty server.</summary>
    public static async Task ResetServerAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        await foreach (var name in js.ListStreamNamesAsync(cancellationToken: cancellationToken))
        {
            await js.DeleteStreamAsync(name, cancellationToken);
        }
        var kv = new NATS.Client.KeyValueStore.NatsKVContext(js);
        await foreach (var bucket in kv.GetBucketNamesAsync(cancellationToken))
        {
            await kv.DeleteStoreAsync(bucket, cancellationToken);
        }
    }

    public static async Task PublishCreatedAsync(INatsJSContext js, string key, int n, CancellationToken cancellationToken, string? traceParent = null)
    {
        var evt = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = $"created-{key}-{n}", ["source"] = "ops-test", ["type"] = "created",
            ["data"] = new JsonObject { ["n"] = n },
        };
        var headers = new NatsHeaders();
        if (traceParent is not null)
        {
            headers["traceparent"] = traceParent;
        }
        var ack = await js.PublishAsync($"aggregate.acme.op.{key}.created", Encoding.UTF8.GetBytes(evt.ToJsonString()),
            opts: new NatsJSPubOpts { MsgId = $"created-{key}-{n}" }, headers: headers, cancellationToken: cancellationToken);
        ack.EnsureSuccess();
    }

    /// <summary>Waits until the stream exists (the runner creates it at start-up).</summary>
    public static async Task<long> MessagesAsync(INatsJSContext js, string stream, CancellationToken cancellationToken, string? subject = null)
    {
        try
        {
            var info = await js.GetStreamAsync(stream, subject is null ? null : new StreamInfoRequest { SubjectsFilter = subject }, cancellationToken);
            return subject is null ? (long)info.Info.State.Messages : info.Info.State.Subjects?.Values.Sum(v => (long)v) ?? 0;
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return 0;
        }
    }

    /// <summary>Every message body on <paramref name="stream"/> (whose subject matches), parsed.</summary>
    public static async Task<List<(string Subject, JsonNode Body, NatsHeaders? Headers)>> ReadAllAsync(INatsJSContext js, string stream, CancellationToken cancellationToken)
    {
        var total = await MessagesAsync(js, stream, cancellationToken);
        var result = new List<(string, JsonNode, NatsHeaders?)>();
        if (total == 0)
        {
            return result;
        }
        var consumer = await js.CreateOrderedConsumerAsync(stream, cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            result.Add((msg.Subject, JsonNode.Parse(msg.Data!)!, msg.Headers));
            if (result.Count >= total)
            {
                break;
            }
        }
        return result;
    }

    public static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
