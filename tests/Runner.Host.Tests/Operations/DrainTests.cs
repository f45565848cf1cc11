using System.Net;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>Drain, resume and SIGTERM on the real binary: readiness, in-flight work, the outbox.</summary>
public sealed class DrainTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const string Succeeded = "workflow.evt.acme.work.do.succeeded";

    [Fact]
    public async Task Drain_flips_readiness_finishes_in_flight_work_and_resume_takes_work_again()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js) = (scope.Token, scope.Js);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = scope.HoldWork(release.Task);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct, configure: env => env["RUNNER_LOG_FORMAT"] = "json");

        // One command in flight: the upstream holds the call.
        await RunnerNode.PublishCreatedAsync(js, "k1", 1, ct);
        await arrived.WaitAsync(ct);

        var (status, body, _) = await node.PostAsync("admin/drain", ct);
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal("draining", body!["state"]!.GetValue<string>());
        // Not ready the moment the drain starts, while the effect is still running.
        var ready = await node.GetAsync("ready", ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Status);
        Assert.Equal("draining", ready.Body!["state"]!.GetValue<string>());
        var progress = await node.GetAsync("admin/drain", ct, RunnerNode.Token);
        Assert.Equal("draining", progress.Body!["state"]!.GetValue<string>());
        Assert.Equal(1, progress.Body!["effects_running"]!.GetValue<int>());

        // Work that arrives while draining is not taken.
        await RunnerNode.PublishCreatedAsync(js, "k2", 2, ct);
        release.TrySetResult();
        await node.WaitUntilAsync(async () => (await node.GetAsync("admin/drain", ct, RunnerNode.Token)).Body!["state"]!.GetValue<string>() == "drained", "drained", ct);

        var drained = await node.GetAsync("admin/drain", ct, RunnerNode.Token);
        Assert.Equal(0, drained.Body!["outbox_depth"]!.GetValue<long>());
        Assert.Equal(0, drained.Body!["effects_running"]!.GetValue<int>());
        // The in-flight effect finished: its result is on WORKFLOW_EVENTS.
        Assert.Equal(1, await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, Succeeded));
        // The event that came during the drain made no command.
        Assert.Equal(1, await RunnerNode.MessagesAsync(js, "WORKFLOW_COMMANDS", ct));
        Assert.Single(scope.Stub.Requests);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await node.GetAsync("ready", ct)).Status);

        // Log lines written while a message is handled carry its trace id, tenant, saga and correlation id (JSON logs).
        // The console logger writes from a queue of its own: the line may reach the output after the drain is done.
        System.Text.Json.Nodes.JsonArray? scopes = null;
        await node.WaitUntilAsync(() => Task.FromResult((scopes = node.ScopesOf(4501, "k1")) is not null), "k1's done line", ct);
        Assert.NotNull(scopes);
        // k1 came without a traceparent: the router started its trace, and the command and the effect's log lines carry it.
        var command = Assert.Single(await RunnerNode.ReadAllAsync(js, "WORKFLOW_COMMANDS", ct));
        var commandTrace = command.Headers!["traceparent"].ToString();
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", commandTrace);
        Assert.Equal(commandTrace[3..35], RunnerNode.ScopeValue(scopes, "TraceId"));
        // No OTLP endpoint is set, so no span is recorded: there is no span id to log.
        Assert.All(scopes, s => Assert.Null(s!["SpanId"]));
        var identity = scopes.Single(s => s!["tenant"] is not null)!;
        Assert.Equal("acme", identity["tenant"]!.GetValue<string>());
        Assert.Equal("op", identity["saga"]!.GetValue<string>());
        Assert.Equal("k1", identity["correlation_id"]!.GetValue<string>());

        var resumed = await node.PostAsync("admin/resume", ct);
        Assert.Equal(HttpStatusCode.OK, resumed.Status);
        Assert.Equal("running", resumed.Body!["state"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("ready", ct)).Status);
        // The event held back during the drain is processed now, and so is the result that came back.
        await node.WaitUntilAsync(async () => await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, Succeeded) == 2, "k2's result", ct);
        Assert.Equal(2, await RunnerNode.MessagesAsync(js, "WORKFLOW_COMMANDS", ct));
        // The loops the resume request started log k2's own trace, not the request's.
        var k2Trace = (await RunnerNode.ReadAllAsync(js, "WORKFLOW_COMMANDS", ct)).Single(c => c.Body["correlation_id"]!.GetValue<string>() == "k2").Headers!["traceparent"].ToString();
        System.Text.Json.Nodes.JsonArray? k2Scopes = null;
        await node.WaitUntilAsync(() => Task.FromResult((k2Scopes = node.ScopesOf(4501, "k2")) is not null), "k2's done line", ct);
        Assert.Equal(k2Trace[3..35], RunnerNode.ScopeValue(k2Scopes!, "TraceId"));
        Assert.Equal(2, scope.Stub.Requests.Count);
        Assert.Equal(HttpStatusCode.Conflict, (await node.PostAsync("admin/resume", ct)).Status);
    }

    [Fact]
    public async Task SIGTERM_flips_readiness_at_once_finishes_in_flight_work_and_exits_0()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js) = (scope.Token, scope.Js);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = scope.HoldWork(release.Task);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        await RunnerNode.PublishCreatedAsync(js, "k1", 1, ct);
        await arrived.WaitAsync(ct);

        await node.Process.TerminateAsync(ct);
        // The server still answers during the drain, and says not ready.
        await node.WaitUntilAsync(async () => (await node.GetAsync("ready", ct)).Status == HttpStatusCode.ServiceUnavailable, "ready to flip", ct);
        var ready = await node.GetAsync("ready", ct);
        Assert.Equal("stopping", ready.Body!["state"]!.GetValue<string>());
        Assert.False(node.Process.HasExited);

        release.TrySetResult();
        Assert.Equal(0, await node.Process.WaitForExitAsync(ct));
        Assert.Contains("drained in", node.Process.Output, StringComparison.Ordinal);
        Assert.Equal(1, await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, Succeeded));
    }

    [Fact]
    public async Task SIGTERM_past_the_deadline_exits_0_and_the_unfinished_command_comes_back_to_the_next_runner()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js) = (scope.Token, scope.Js);
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = scope.HoldWork(never.Task, held: 1);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct, configure: env =>
        {
            env["RUNNER_SHUTDOWN_TIMEOUT"] = "1s";
            env["RUNNER_ACK_WAIT"] = "2s";
            env["RUNNER_EFFECT_LEASE"] = "1s";
        });
        await RunnerNode.PublishCreatedAsync(js, "k1", 1, ct);
        await first.WaitAsync(ct);

        Assert.Equal(0, await node.TerminateAsync(ct));
        Assert.Contains("did not finish within", node.Process.Output, StringComparison.Ordinal);
        Assert.Equal(0, await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, "workflow.evt.acme.work.do.>"));

        // Not acked, so it comes back: the next runner takes the claim over and completes it.
        await node.RestartAsync(ct);
        await node.WaitUntilAsync(async () => await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, Succeeded) == 1, "the result after takeover", ct);
        var calls = scope.Stub.Requests.Where(r => r.PathAndQuery == "/work").ToList();
        Assert.Equal(2, calls.Count);
        Assert.Equal(calls[0].IdempotencyKey, calls[1].IdempotencyKey);
        never.TrySetResult();
    }
}
