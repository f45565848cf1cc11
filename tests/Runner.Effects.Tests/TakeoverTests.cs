using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects.Claims;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>A worker process killed in the middle of an upstream call: another worker takes the command over once the lease runs out.</summary>
public sealed class TakeoverTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_worker_killed_mid_call_is_taken_over_with_the_same_idempotency_key_and_one_result()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var firstArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource();
        upstream.Respond("/charges", (_, call) =>
        {
            if (call == 1)
            {
                firstArrived.TrySetResult();
                return StubResponse.Hold(never.Task);
            }
            return new StubResponse(201, """{"reference":"ch-takeover"}""");
        });
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);

        using var dir = new TempDirectory("runner-takeover");
        var manifests = dir.File("manifests");
        Directory.CreateDirectory(manifests);
        await File.WriteAllTextAsync(Path.Combine(manifests, "effects.yaml"), $$"""
            kind: effect
            name: payment.charge
            provider: http
            http: { url: "{{new Uri(upstream.Url, "/charges")}}", method: POST }
            retry: { max_attempts: 1 }
            timeout_ms: 60000
            """, cts.Token);
        var environment = new Dictionary<string, string>
        {
            ["RUNNER_MODE"] = "effect",
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_MANIFESTS"] = manifests,
            ["RUNNER_DATA_DIR"] = dir.File("data"),
            ["RUNNER_WORKER_ID"] = "process-a",
            ["RUNNER_EFFECT_LEASE"] = "2s",
            ["RUNNER_ACK_WAIT"] = "2s",
        };
        using (var process = RunnerProcess.Start(["serve"], environment))
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "charge-1", new { amount = 5 }), cancellationToken: cts.Token);
            await firstArrived.Task.WaitAsync(cts.Token);
            var held = await new EffectClaimsProbe(js).GetAsync("acme", "charge-1", cts.Token);
            Assert.Equal(ClaimRecord.Running, held!.State);
            Assert.Equal("process-a", held.Worker);
            await process.KillAsync(cts.Token);
        }

        var charge = Effects.Charge(upstream.Url);
        // B's own lease is the default: process A's 2 s lease decides when B may take over, and a stall of this
        // test process must not make B give its run up (a third call).
        await using var b = await EffectNode.StartAsync(nats, [charge], "worker-b", ackWait: TimeSpan.FromSeconds(2));
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 1, s_timeout, "the takeover's result");

        var calls = upstream.Requests.Where(r => r.PathAndQuery.StartsWith("/charges", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, calls.Count);
        Assert.All(calls, c => Assert.Equal("charge-1", c.IdempotencyKey));
        var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        var result = Assert.Single(results);
        Assert.Equal("workflow.evt.acme.payment.charge.succeeded", result.Subject);
        Assert.Equal("ch-takeover", result.Body["data"]!["result"]!["reference"]!.GetValue<string>());
        var record = await b.Runtime.Claims!.GetAsync("acme", "charge-1", cts.Token);
        Assert.Equal(ClaimRecord.Completed, record!.State);
        Assert.Equal("worker-b", record.Worker);
        Assert.Equal(2, record.Attempt);
    }

    /// <summary>Reads claims without being a worker.</summary>
    private sealed class EffectClaimsProbe(INatsJSContext js)
    {
        public async Task<ClaimRecord?> GetAsync(string tenant, string commandId, CancellationToken cancellationToken)
        {
            var claims = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Worker = "probe" }, TimeProvider.System, cancellationToken);
            return await claims.GetAsync(tenant, commandId, cancellationToken);
        }
    }
}
