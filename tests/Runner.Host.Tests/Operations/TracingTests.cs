using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Runner.Effects;
using Runner.Host.Service;
using Runner.Host.Settings;
using Runner.Sagas;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>One trace from the producer's traceparent through router, saga, relay and effect, and back (in-memory exporter).</summary>
public sealed class TracingTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task One_trace_id_spans_router_saga_relay_effect_and_the_result_back_to_the_saga()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js, stub) = (scope.Token, scope.Js, scope.Stub);
        using var dir = new TempDirectory("runner-trace");
        Directory.CreateDirectory(dir.File("manifests"));
        await File.WriteAllTextAsync(dir.File("manifests/op.yaml"), RunnerNode.SagaManifest, ct);
        await File.WriteAllTextAsync(dir.File("manifests/op.js"), RunnerNode.Script("v1"), ct);
        await File.WriteAllTextAsync(dir.File("manifests/effects.yaml"), RunnerNode.Effects(stub.Url), ct);
        var settings = new RunnerSettings
        {
            NatsUrl = nats.Url,
            DataDir = dir.File("data"),
            Manifests = dir.File("manifests"),
            Partitions = 4,
            WorkerId = "trace-test",
        };

        var spans = new List<Activity>();
        using var tracing = Sdk.CreateTracerProviderBuilder()
            .AddSource(SagasTelemetry.ActivitySourceName, EffectsTelemetry.ActivitySourceName)
            .AddInMemoryExporter(spans)
            .Build();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = new DoneListener(done);
        await using var components = await RunnerComponents.StartAsync(settings, NullLoggerFactory.Instance, TimeProvider.System, listener, ct);

        var traceId = ActivityTraceId.CreateRandom();
        var producerSpan = ActivitySpanId.CreateRandom();
        await RunnerNode.PublishCreatedAsync(js, "t1", 1, ct, traceParent: $"00-{traceId}-{producerSpan}-01");
        await done.Task.WaitAsync(ct);

        // A span is exported when it ends. The effect's span ends after its ack, which comes after the result it
        // published, so the saga can finish the instance before it: wait for the six hops' spans, then look at them.
        Activity[] all = [];
        await SagaHarness.WaitUntilAsync(() =>
        {
            tracing.ForceFlush();
            lock (spans)
            {
                all = [.. spans];
            }
            return all.Count(a => a.TraceId == traceId) >= 6;
        }, TimeSpan.FromSeconds(30), "the six spans of the trace to end");
        var trace = all.Where(a => a.TraceId == traceId).ToList();
        string Describe() => string.Join("\n", all.Select(a => $"{a.DisplayName} {a.TraceId} {a.SpanId} <- {a.ParentSpanId}"));
        Activity One(string name, ActivitySpanId parent) =>
            trace.SingleOrDefault(a => a.DisplayName == name && a.ParentSpanId == parent) ?? throw new Xunit.Sdk.XunitException($"no span '{name}' under {parent}:\n{Describe()}");

        // Each hop is the child of the one before, across NATS messages, the outbox in LMDB and the claim.
        var route = One("route AGGREGATE_EVENTS", producerSpan);
        var saga = One("saga op", route.SpanId);
        var relay = One("relay work.do", saga.SpanId);
        var effect = One("effect work.do", relay.SpanId);
        var routeBack = One("route WORKFLOW_EVENTS", effect.SpanId);
        var sagaAgain = One("saga op", routeBack.SpanId);
        Assert.Equal("acme", saga.GetTagItem("runner.tenant"));
        Assert.Equal("t1", saga.GetTagItem("runner.correlation_id"));
        Assert.Equal("t1", sagaAgain.GetTagItem("runner.correlation_id"));
        Assert.All(trace, a => Assert.Equal(traceId, a.TraceId));

        // The upstream call carries the effect's span, so the upstream's own spans join the trace.
        var call = Assert.Single(stub.Requests);
        Assert.Equal($"00-{traceId}-{effect.SpanId}-01", call.Headers["traceparent"]);
    }

    [Fact]
    public async Task Serve_records_spans_and_exports_them_when_an_OTLP_endpoint_is_set()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js) = (scope.Token, scope.Js);
        // A collector that takes OTLP over HTTP: it records what it is sent.
        await using var collector = await StubUpstream.StartAsync(ct);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct, configure: env =>
        {
            env["RUNNER_LOG_FORMAT"] = "json";
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Url.ToString().TrimEnd('/');
            env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
            env["OTEL_BSP_SCHEDULE_DELAY"] = "100";
        });

        var traceId = ActivityTraceId.CreateRandom();
        var producer = $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01";
        await RunnerNode.PublishCreatedAsync(js, "s1", 1, ct, traceParent: producer);

        // Each stage's span reaches the collector (span names are plain UTF-8 in the protobuf body).
        string[] names = ["route AGGREGATE_EVENTS", "saga op", "relay work.do", "effect work.do"];
        await node.WaitUntilAsync(() => Task.FromResult(names.All(name =>
            collector.Requests.Any(r => r.PathAndQuery == "/v1/traces" && r.Body.Contains(name, StringComparison.Ordinal)))), "the stages' spans exported", ct);

        // The command carries the relay's span, in the producer's trace.
        var command = Assert.Single(await RunnerNode.ReadAllAsync(js, "WORKFLOW_COMMANDS", ct));
        var commandTrace = command.Headers!["traceparent"].ToString();
        Assert.StartsWith($"00-{traceId}-", commandTrace, StringComparison.Ordinal);
        Assert.NotEqual(producer, commandTrace);

        // The effect's log line has the span's trace id and span id, once.
        System.Text.Json.Nodes.JsonArray? scopes = null;
        await node.WaitUntilAsync(() => Task.FromResult((scopes = node.ScopesOf(4501)) is not null), "the command's done line", ct);
        Assert.Equal(traceId.ToHexString(), RunnerNode.ScopeValue(scopes!, "TraceId"));
        Assert.Matches("^[0-9a-f]{16}$", RunnerNode.ScopeValue(scopes!, "SpanId"));
    }

    private sealed class DoneListener(TaskCompletionSource done) : Runner.Sagas.Partitions.ITransitionListener
    {
        public void OnCommitted(IReadOnlyList<Runner.Sagas.Partitions.TransitionNotice> notices)
        {
            if (notices.Any(n => n.Done))
            {
                done.TrySetResult();
            }
        }
    }
}
