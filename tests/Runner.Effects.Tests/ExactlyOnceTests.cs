using System.Collections.Concurrent;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects.Claims;
using Runner.Effects.Workers;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// Two effect workers compete for the same commands while commands are redelivered in every way
/// JetStream can: the upstream sees one call per command id, and each command has one result.
/// </summary>
public sealed class ExactlyOnceTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Two_workers_run_each_command_once_and_publish_one_result_each()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 8) };
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a");
        await using var b = await EffectNode.StartAsync(nats, effects, "worker-b");

        const int Commands = 200;
        for (var i = 0; i < Commands; i++)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", $"load-{i}", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= Commands, s_timeout, "a result per command");

        for (var i = 0; i < Commands; i++)
        {
            Assert.Equal(1, upstream.CallsFor($"load-{i}"));
        }
        var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(Commands, results.Count);
        Assert.Equal(Commands, results.Select(r => r.Body["id"]!.GetValue<string>()).Distinct().Count());
        Assert.True(a.Executed > 0 && b.Executed > 0, $"both workers should take work: a={a.Executed}, b={b.Executed}");
        Assert.Equal(Commands, a.Executed + b.Executed);
    }

    [Fact]
    public async Task Redelivered_commands_are_answered_from_the_stored_result_not_run_again()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 8) };

        // Worker A misbehaves in the three ways a command comes back. It stalls, as a paused process
        // does, past the ack wait after publishing the result and before acking. It NAKs after
        // finishing. And it "dies" after completing the claim but before publishing the result.
        var slow = new HashSet<string> { "cmd-slow-0", "cmd-slow-1" };
        var naked = new ConcurrentDictionary<string, int>();
        var dying = new HashSet<string> { "cmd-die-0", "cmd-die-1" };
        var hooks = new EffectWorkerHooks
        {
            AfterPublished = async (id, ct) =>
            {
                if (slow.Contains(id))
                {
                    await Task.Delay(TimeSpan.FromSeconds(3), ct);
                }
            },
            AfterCompleted = async (id, ct) =>
            {
                if (dying.Contains(id))
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                }
            },
            StallHeartbeat = id => slow.Contains(id) || dying.Contains(id),
            NakInsteadOfAck = id => id.StartsWith("cmd-nak", StringComparison.Ordinal) && naked.AddOrUpdate(id, 1, (_, n) => n + 1) == 1,
        };
        var ids = slow.Concat(dying).Concat(["cmd-nak-0", "cmd-nak-1"]).ToList();
        var results = 0L;
        {
            await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", ackWait: TimeSpan.FromSeconds(1), hooks: hooks);
            foreach (var id in ids)
            {
                await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", id, new { id }), cancellationToken: cts.Token);
            }
            await SagaHarness.WaitUntilAsync(() => ids.All(id => upstream.CallsFor(id) >= 1), s_timeout, "worker A to call the upstream for every command");

            // Worker B joins: it receives the redeliveries of A's unacked commands.
            await using var b = await EffectNode.StartAsync(nats, effects, "worker-b", ackWait: TimeSpan.FromSeconds(1));
            // Every command ends acked. The dying ones can only be acked by B, from the stored
            // result, and the NAKed ones come back at once; a slow one is answered by B only if
            // its redelivery reaches B before A's late ack, which the server decides.
            await SagaHarness.WaitUntilAsync(async () =>
            {
                var info = await js.GetConsumerAsync("WORKFLOW_COMMANDS", EffectWorker.ConsumerName("runner", "payment.charge", null), cts.Token);
                return info.Info.NumAckPending == 0 && info.Info.NumPending == 0;
            }, s_timeout, "every command to be acked");
            Assert.True(a.Republished + b.Republished >= dying.Count + 2, $"republished {a.Republished} + {b.Republished}");
            Assert.True(b.Republished >= dying.Count, $"worker B republished {b.Republished}");
            Assert.Equal(ids.Count, a.Executed + b.Executed);
            results = await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token);
        }

        foreach (var id in ids)
        {
            Assert.Equal(1, upstream.CallsFor(id));
        }
        Assert.Equal(ids.Count, results);
        var events = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(ids.Select(id => "result:" + id).Order(), events.Select(e => e.Body["id"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task A_command_published_twice_under_different_message_ids_runs_once()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        await using var a = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url, concurrency: 8)], "worker-a");

        var command = EffectStreams.Command("acme", "payment.charge", "twice", new { n = 1 });
        await EffectStreams.PublishAsync(js, command, cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 1, s_timeout, "the first result");
        // Past the server's duplicate window a re-sent command is a new message: only the claim can tell.
        var copy = EffectStreams.Command("acme", "payment.charge", "twice", new { n = 1 });
        var ack = await js.PublishAsync("workflow.cmd.acme.payment.charge", System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(copy, Runner.Core.CoreJsonContext.Default.CommandMessage),
            opts: new NatsJSPubOpts { MsgId = "another-message-id" }, cancellationToken: cts.Token);
        Assert.False(ack.Duplicate);
        await SagaHarness.WaitUntilAsync(() => a.Republished >= 1, s_timeout, "the copy to be answered from the stored result");

        Assert.Equal(1, upstream.CallsFor("twice"));
        var claims = a.Runtime.Claims!;
        var record = await claims.GetAsync("acme", "twice", cts.Token);
        Assert.Equal(ClaimRecord.Completed, record!.State);
        Assert.Equal(1, record.Attempt);
    }

    [Fact]
    public async Task A_worker_that_stalls_past_its_lease_loses_the_claim_and_publishes_nothing()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var release = new TaskCompletionSource();
        upstream.Respond("/charges", (_, call) => call == 1
            ? StubResponse.Hold(release.Task, 201, """{"reference":"from-a"}""")
            : new StubResponse(201, """{"reference":"from-b"}"""));
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 8) with { TimeoutMs = 60_000 } };
        // A's heartbeat freezes, as in a long pause: its ack wait and its lease run out mid-call.
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", lease: TimeSpan.FromSeconds(1), ackWait: TimeSpan.FromSeconds(1),
            hooks: new EffectWorkerHooks { StallHeartbeat = _ => true });
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "stalled", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => upstream.CallsFor("stalled") == 1, s_timeout, "worker A's call");

        // B's own lease is the default: a stall of B's test process (it would give a 1 s lease up after half a
        // second) must not make B give its run up and a third run call the upstream again. A's 1 s lease alone
        // decides when B may take over.
        await using var b = await EffectNode.StartAsync(nats, effects, "worker-b", ackWait: TimeSpan.FromSeconds(1));
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 1, s_timeout, "worker B's result");
        // On a loaded machine A may have claimed the command and given that claim up before calling anything: its
        // 1 s lease was nearly out by the time the run began, so it handed the command back and claimed it again
        // (the held call is that later claim's). Each such claim took an execution number and counts as lost; they
        // all come before the held call, so before B ran. The held call's own loss comes after the release.
        var givenUpBeforeRunning = a.Lost;
        release.SetResult();
        await SagaHarness.WaitUntilAsync(() => a.Lost == givenUpBeforeRunning + 1, s_timeout, "worker A to find its claim taken over");

        var result = Assert.Single(await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token));
        Assert.Equal("from-b", result.Body["data"]!["result"]!["reference"]!.GetValue<string>());
        var record = await b.Runtime.Claims!.GetAsync("acme", "stalled", cts.Token);
        Assert.Equal("worker-b", record!.Worker);
        Assert.Equal(2 + givenUpBeforeRunning, record.Attempt);
        Assert.Contains("from-b", System.Text.Encoding.UTF8.GetString(record.ResultEvent!), StringComparison.Ordinal);
        Assert.Equal(2, upstream.CallsFor("stalled"));
        Assert.Equal(1L, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));
    }

    [Fact]
    public async Task A_worker_whose_renewals_hang_gives_the_run_up_before_its_lease_ends()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var release = new TaskCompletionSource();
        upstream.Respond("/charges", (_, _) => StubResponse.Hold(release.Task, 201, """{"reference":"late"}"""));
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 8) with { TimeoutMs = 60_000 } };
        // Every renewal of A's claim is confirmed only 20 leases after it was written (a reply that does not come back), while A itself runs on.
        var lease = TimeSpan.FromSeconds(1);
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", lease: lease, ackWait: TimeSpan.FromSeconds(30),
            hooks: new EffectWorkerHooks { DelayRenewal = _ => lease * 20 });
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "hung", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => upstream.CallsFor("hung") == 1, s_timeout, "worker A's call");
        var claimed = await a.Runtime.Claims!.GetAsync("acme", "hung", cts.Token);
        // A claim given up before its call (a loaded machine let its 1 s lease run nearly out first) counts as lost
        // too, and took an execution number: the held call's claim is execution k + 1 after k of them. Its own loss
        // makes k + 1 (read from the claim, since the held run may be given up before a count could be read here).

        // A stops the run itself once no renewal has got through and its lease is nearly out, long before the
        // renewal returns: past that moment another worker may take the claim over and run the command.
        await SagaHarness.WaitUntilAsync(() => a.Lost == claimed!.Attempt, lease * 10, "worker A to give the run up");
        Assert.True(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() < claimed!.LeaseUntilMs + (long)(lease * 5).TotalMilliseconds,
            "given up well before the hung renewal could have returned");
        release.SetResult();
        var record = await a.Runtime.Claims!.GetAsync("acme", "hung", cts.Token);
        Assert.Equal(ClaimRecord.Running, record!.State);
        Assert.Equal("worker-a", record.Worker);
        Assert.Equal(0L, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));
    }

    [Fact]
    public async Task A_worker_whose_renewals_are_slow_keeps_its_run_past_several_leases()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var release = new TaskCompletionSource();
        upstream.Respond("/charges", (_, _) => StubResponse.Hold(release.Task, 201, """{"reference":"slow"}"""));
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 8) with { TimeoutMs = 60_000 } };
        // Every renewal takes 0.28 of a lease (L) to come back. The worker renews every L/3 and gives the run up
        // when no renewal is confirmed L/6 before its lease ends. Renewals made an interval after the lease began
        // (and at least a tick, L/12, after the previous reply) start every 0.36 L and are confirmed 0.64 L into
        // the lease before: 0.19 L (1.5 s) inside the give-up point, room for a test process starved for a moment.
        // Renewals made an interval after the previous one came back would be confirmed 2 × 0.28 + 0.33 = 0.89 L
        // into it, past the give-up point at 0.83 L: the worker would give the run up.
        var lease = TimeSpan.FromSeconds(8);
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", lease: lease, ackWait: TimeSpan.FromSeconds(30),
            hooks: new EffectWorkerHooks { DelayRenewal = _ => lease * 0.28 });
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "slow", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => upstream.CallsFor("slow") == 1, s_timeout, "worker A's call");

        await SagaHarness.WaitUntilAsync(async () => await a.Runtime.Claims!.GetAsync("acme", "slow", cts.Token) is { } claim
            && claim.LeaseUntilMs >= claim.ClaimedAtMs + 2 * (long)lease.TotalMilliseconds, s_timeout, "the lease renewed past two lease lengths");
        release.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 1, s_timeout, "the result");

        Assert.Equal(0, a.Lost);
        Assert.Equal(1, upstream.CallsFor("slow"));
        var record = await a.Runtime.Claims!.GetAsync("acme", "slow", cts.Token);
        Assert.Equal((ClaimRecord.Completed, "worker-a", 1), (record!.State, record.Worker, record.Attempt));
    }
}
