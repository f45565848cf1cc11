using System.Runtime.CompilerServices;
using NATS.Client.JetStream;
using Runner.Effects.Claims;
using Runner.Effects.Workers;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// Many commands in flight on one worker at once: one lease keeper renews all their claims, and a
/// pulled batch that meets claims of every kind runs only the commands nobody ran or holds.
/// </summary>
public sealed class InFlightTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Many_commands_running_past_several_leases_keep_their_claims_and_run_once()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var held = await HeldAsync(cts.Token);
        var (upstream, release, js) = (held.Upstream, held.Release, held.Js);
        const int Commands = 24;
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: Commands) with { TimeoutMs = 60_000 } };
        // A worker gives a run up when no renewal has been confirmed by a sixth of a lease before its end,
        // so a lease must outlast the longest stall a loaded machine gives the test process (half a lease).
        var lease = TimeSpan.FromSeconds(5);
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", lease: lease, ackWait: lease);
        var ids = Enumerable.Range(0, Commands).Select(i => $"long-{i}").ToList();
        foreach (var id in ids)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", id, new { id }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => ids.All(id => upstream.CallsFor(id) == 1), s_timeout, "every command to be in flight");

        // A rival that would take over any claim whose lease ran out, and any message whose ack wait did.
        await using var b = await EffectNode.StartAsync(nats, effects, "worker-b", lease: lease, ackWait: lease);
        var claims = a.Runtime.Claims!;
        await SagaHarness.WaitUntilAsync(async () =>
        {
            foreach (var id in ids)
            {
                var record = await claims.GetAsync("acme", id, cts.Token);
                if (record is null || record.LeaseUntilMs < record.ClaimedAtMs + 2 * (long)lease.TotalMilliseconds)
                {
                    return false;
                }
            }
            return true;
        }, s_timeout, "every lease to be renewed past two lease lengths");
        release.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= Commands, s_timeout, "a result per command");

        Assert.All(ids, id => Assert.Equal(1, upstream.CallsFor(id)));
        Assert.Equal(Commands, a.Executed);
        Assert.Equal(0, b.Executed);
        Assert.Equal(0, a.Lost);
        foreach (var id in ids)
        {
            var record = await claims.GetAsync("acme", id, cts.Token);
            Assert.Equal(ClaimRecord.Completed, record!.State);
            Assert.Equal("worker-a", record.Worker);
            Assert.Equal(1, record.Attempt);
        }
        Assert.Equal(Commands, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));
    }

    [Fact]
    public async Task A_worker_is_delivered_no_more_commands_than_it_has_free_slots()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var held = await HeldAsync(cts.Token);
        var (upstream, release, js) = (held.Upstream, held.Release, held.Js);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 3) with { TimeoutMs = 60_000 } };
        await using var node = await EffectNode.StartAsync(nats, effects, "worker-slots");
        var ids = Enumerable.Range(0, 10).Select(i => $"slot-{i}").ToList();
        foreach (var id in ids)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", id, new { id }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => upstream.Requests.Count == 3, s_timeout, "three calls in flight");
        var consumer = EffectWorker.ConsumerName("runner", "payment.charge", null);

        // Every slot busy, and no effect has run yet, so nothing is claimed ahead: the server has handed out the
        // three running commands and no more.
        await Task.Delay(500, cts.Token);
        var info = (await js.GetConsumerAsync("WORKFLOW_COMMANDS", consumer, cts.Token)).Info;
        Assert.Equal(3UL, info.Delivered.ConsumerSeq);
        Assert.Equal(3, info.NumAckPending);
        Assert.Equal(7UL, info.NumPending);
        Assert.Equal(3, upstream.Requests.Count);

        release.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= ids.Count, s_timeout, "a result per command");
        Assert.All(ids, id => Assert.Equal(1, upstream.CallsFor(id)));
        Assert.Equal(ids.Count, node.Executed);
    }

    [Fact]
    public async Task A_batch_meeting_completed_and_held_claims_runs_only_the_new_commands()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var setup = await FreshAsync(cts.Token);
        var (upstream, js) = (setup.Upstream, setup.Js);
        var other = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Worker = "worker-other", Lease = TimeSpan.FromMinutes(5) }, TimeProvider.System, cts.Token);
        var done = Enumerable.Range(0, 6).Select(i => $"done-{i}").ToList();
        var held = Enumerable.Range(0, 6).Select(i => $"held-{i}").ToList();
        var fresh = Enumerable.Range(0, 12).Select(i => $"new-{i}").ToList();
        foreach (var id in done)
        {
            var claimed = Assert.IsType<ClaimDecision.Claimed>(await other.ClaimAsync("acme", id, cts.Token));
            Assert.True(await claimed.Claim.CompleteAsync("workflow.evt.acme.payment.charge.succeeded", System.Text.Encoding.UTF8.GetBytes("{\"id\":\"result:" + id + "\",\"data\":{\"by\":\"worker-other\"}}"), cts.Token));
        }
        foreach (var id in held)
        {
            Assert.IsType<ClaimDecision.Claimed>(await other.ClaimAsync("acme", id, cts.Token));
        }
        // Published before the worker starts, interleaved, so that its first pulls carry all three kinds together.
        var ids = done.Zip(held, fresh.Take(6)).SelectMany(t => new[] { t.First, t.Second, t.Third }).Concat(fresh.Skip(6)).ToList();
        foreach (var id in ids)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", id, new { id }), cancellationToken: cts.Token);
        }

        await using var a = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url, concurrency: 32)], "worker-a");
        var worker = a.Runtime.Workers.Single();
        await SagaHarness.WaitUntilAsync(() => a.Executed == fresh.Count && a.Republished == done.Count && worker.LeftHeld >= held.Count, s_timeout,
            "the new commands to run, the completed ones to be answered and the held ones to be left");
        // A command counts as executed before its result is published: wait for the results themselves.
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= fresh.Count + done.Count, s_timeout,
            "a result for every new and every completed command");

        Assert.All(fresh, id => Assert.Equal(1, upstream.CallsFor(id)));
        Assert.All(done.Concat(held), id => Assert.Equal(0, upstream.CallsFor(id)));
        var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(fresh.Concat(done).Select(id => "result:" + id).Order(), results.Select(r => r.Body["id"]!.GetValue<string>()).Order());
        Assert.All(results.Where(r => r.Body["id"]!.GetValue<string>().StartsWith("result:done-", StringComparison.Ordinal)),
            r => Assert.Equal("worker-other", r.Body["data"]!["by"]!.GetValue<string>()));
        foreach (var id in held)
        {
            var record = await other.GetAsync("acme", id, cts.Token);
            Assert.Equal(ClaimRecord.Running, record!.State);
            Assert.Equal("worker-other", record.Worker);
        }
    }

    [Fact]
    public async Task A_command_whose_effect_ran_gives_its_slot_to_the_next_while_it_finishes_and_a_full_finish_stops_the_pulls()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var setup = await FreshAsync(cts.Token);
        var (upstream, js) = (setup.Upstream, setup.Js);
        // One slot: the first command is held after its completion is recorded, before its result is published.
        // Nothing claimed ahead, so what the worker holds is its slot and its finishing place alone.
        var finish = new TaskCompletionSource();
        var hooks = new EffectWorkerHooks
        {
            FixedClaimAhead = 0,
            AfterCompleted = async (id, ct) =>
            {
                if (id == "first")
                {
                    await finish.Task.WaitAsync(ct);
                }
            },
        };
        await using var a = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url, concurrency: 1)], "worker-a", hooks: hooks);
        string[] ids = ["first", "second", "third"];
        foreach (var id in ids)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", id, new { id }), cancellationToken: cts.Token);
        }

        // The first one's slot went to the second while the first is still finishing.
        await SagaHarness.WaitUntilAsync(() => upstream.CallsFor("first") == 1 && upstream.CallsFor("second") == 1, s_timeout,
            "the second command to run while the first one finishes");
        var consumer = EffectWorker.ConsumerName("runner", "payment.charge", null);
        // The second now waits for the one finishing place with its slot in hand, so the third stays in the stream.
        await SagaHarness.WaitUntilAsync(() => a.Executed == 2, s_timeout, "the second command's effect to have run");
        await Task.Delay(TimeSpan.FromMilliseconds(500), cts.Token);
        var info = (await js.GetConsumerAsync("WORKFLOW_COMMANDS", consumer, cts.Token)).Info;
        Assert.Equal(0, upstream.CallsFor("third"));
        Assert.Equal(1, (int)info.NumPending);
        Assert.Equal(2, (int)info.NumAckPending);
        Assert.Equal(0, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));

        finish.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= ids.Length, s_timeout, "a result per command");
        await SagaHarness.WaitUntilAsync(async () => (await js.GetConsumerAsync("WORKFLOW_COMMANDS", consumer, cts.Token)).Info.NumAckPending == 0, s_timeout, "every command acked");
        Assert.All(ids, id => Assert.Equal(1, upstream.CallsFor(id)));
        var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(ids.Select(id => "result:" + id).Order(), results.Select(r => r.Body["id"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task Commands_claimed_ahead_wait_for_a_slot_with_their_leases_kept_and_a_drain_hands_them_back()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var held = await HeldAsync(cts.Token);
        var (upstream, release, js) = (held.Upstream, held.Release, held.Js);
        // As in the test above: a lease must outlast the longest stall a loaded machine gives the test process (half a lease).
        var lease = TimeSpan.FromSeconds(5);
        var effects = new[] { Effects.Charge(upstream.Url, concurrency: 2) with { TimeoutMs = 60_000 } };
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", lease: lease, ackWait: lease, drain: TimeSpan.FromSeconds(60),
            hooks: new EffectWorkerHooks { FixedClaimAhead = 2 });
        var ids = Enumerable.Range(0, 10).Select(i => $"ahead-{i}").ToList();
        foreach (var id in ids)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", id, new { id }), cancellationToken: cts.Token);
        }
        var claims = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Worker = "reader" }, TimeProvider.System, cts.Token);
        await SagaHarness.WaitUntilAsync(() => upstream.Requests.Count == 2, s_timeout, "both slots calling the upstream");
        var running = ids.Where(id => upstream.CallsFor(id) == 1).ToList();
        var ahead = new List<string>();
        await SagaHarness.WaitUntilAsync(async () =>
        {
            ahead.Clear();
            foreach (var id in ids.Except(running))
            {
                if (await claims.GetAsync("acme", id, cts.Token) is { State: ClaimRecord.Running, Worker: "worker-a" })
                {
                    ahead.Add(id);
                }
            }
            return ahead.Count == 2;
        }, s_timeout, "two more commands claimed while both slots are busy");

        // Past the first lease: the commands waiting for a slot had their claims renewed and their messages kept in
        // progress, as the running ones; still two calls at the upstream, and four commands out of the stream.
        await SagaHarness.WaitUntilAsync(async () =>
        {
            foreach (var id in ahead)
            {
                if (await claims.GetAsync("acme", id, cts.Token) is not { } claim || claim.LeaseUntilMs <= claim.ClaimedAtMs + (2 * (long)lease.TotalMilliseconds))
                {
                    return false;
                }
            }
            return true;
        }, s_timeout, "the claims made ahead renewed after their first lease ran out");
        var consumer = EffectWorker.ConsumerName("runner", "payment.charge", null);
        var info = (await js.GetConsumerAsync("WORKFLOW_COMMANDS", consumer, cts.Token)).Info;
        Assert.Equal(4, info.NumAckPending);
        Assert.Equal(6UL, info.NumPending);
        Assert.Equal(0, info.NumRedelivered);
        Assert.Equal(2, upstream.Requests.Count);
        foreach (var id in ahead)
        {
            var claim = (await claims.GetAsync("acme", id, cts.Token))!;
            Assert.Equal((ClaimRecord.Running, "worker-a", 1), (claim.State, claim.Worker, claim.Attempt));
        }

        // A drain: the two claimed ahead never ran, so they go back at once (claims deleted); the two running finish.
        var worker = a.Runtime.Workers.Single();
        var drained = a.Runtime.DrainAsync(cts.Token);
        await SagaHarness.WaitUntilAsync(() => worker.HandedBack == 2, s_timeout, "the commands claimed ahead handed back");
        foreach (var id in ahead)
        {
            Assert.Null(await claims.GetAsync("acme", id, cts.Token));
            Assert.Equal(0, upstream.CallsFor(id));
        }
        release.SetResult();
        await drained;
        Assert.Equal(2, a.Executed);
        Assert.Equal(2, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));

        // Another worker takes the rest, those handed back among them: every command runs once.
        await using var b = await EffectNode.StartAsync(nats, effects, "worker-b");
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= ids.Count, s_timeout, "a result per command");
        Assert.All(ids, id => Assert.Equal(1, upstream.CallsFor(id)));
        Assert.Equal(ids.Count - 2, b.Executed);
        foreach (var id in ahead)
        {
            Assert.Equal("worker-b", (await claims.GetAsync("acme", id, cts.Token))!.Worker);
        }
    }

    [Fact]
    public async Task A_command_claimed_ahead_whose_lease_ran_out_while_it_waited_is_not_run_but_goes_back_at_once()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var ahead = await SecondClaimedAheadAsync(TimeSpan.FromSeconds(5), cts.Token);
        var (upstream, js, claims, worker) = (ahead.Upstream, ahead.Js, ahead.Claims, ahead.Worker);
        // Its heartbeat back, as a process resuming: the slot comes free at once, before the keeper's next tick may
        // have seen the lapse. The second command finds its lease over, runs nothing, and is NAKed; its redelivery
        // takes the lapsed claim over.
        ahead.Unfreeze();
        ahead.Release.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 2, TimeSpan.FromSeconds(30), "a result for both commands");
        Assert.Equal(1, worker.Lost);
        Assert.Equal(1, upstream.CallsFor("first"));
        Assert.Equal(1, upstream.CallsFor("second"));
        var second = (await claims.GetAsync("acme", "second", cts.Token))!;
        Assert.Equal((ClaimRecord.Completed, "worker-a", 2), (second.State, second.Worker, second.Attempt));
    }

    [Fact]
    public async Task A_command_claimed_ahead_whose_claim_is_given_up_while_every_slot_is_busy_goes_back_without_waiting_for_a_slot()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var ahead = await SecondClaimedAheadAsync(TimeSpan.FromSeconds(3), cts.Token);
        var (upstream, js, claims, worker) = (ahead.Upstream, ahead.Js, ahead.Claims, ahead.Worker);
        // Its heartbeat back, while the first still holds the slot: the keeper finds no renewal confirmed in time and
        // gives the claim up. The command goes back at once, not once a slot comes free; its redelivery takes the lapsed
        // claim over and waits, claimed ahead again, for the slot.
        ahead.Unfreeze();
        await SagaHarness.WaitUntilAsync(() => worker.Lost == 1, s_timeout, "the second command given up while the slot is still busy");
        await SagaHarness.WaitUntilAsync(async () => await claims.GetAsync("acme", "second", cts.Token) is { State: ClaimRecord.Running, Worker: "worker-a", Attempt: 2 },
            s_timeout, "the second command claimed again from its redelivery");
        Assert.Equal(1, worker.LeasesLapsed);
        Assert.Equal(0, upstream.CallsFor("second"));
        Assert.False(ahead.Release.Task.IsCompleted);

        ahead.Release.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 2, TimeSpan.FromSeconds(30), "a result for both commands");
        Assert.Equal(1, upstream.CallsFor("first"));
        Assert.Equal(1, upstream.CallsFor("second"));
        var second = (await claims.GetAsync("acme", "second", cts.Token))!;
        Assert.Equal((ClaimRecord.Completed, "worker-a", 2), (second.State, second.Worker, second.Attempt));
        Assert.Equal(1, worker.Lost);
    }

    [Fact]
    public async Task A_command_whose_lease_ran_out_while_it_waited_for_a_finishing_place_has_it_renewed_and_is_completed_when_nobody_took_it_over()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var setup = await FreshAsync(cts.Token);
        var (upstream, js) = (setup.Upstream, setup.Js);
        var lease = TimeSpan.FromSeconds(5);
        // One slot and one finishing place. The first command holds the finishing place after its completion is
        // recorded; the second's heartbeat is frozen, as in a paused process, until its lease has run out.
        var finish = new TaskCompletionSource();
        var frozen = true;
        var hooks = new EffectWorkerHooks
        {
            FixedClaimAhead = 0,
            StallHeartbeat = id => id == "second" && Volatile.Read(ref frozen),
            AfterCompleted = async (id, ct) =>
            {
                if (id == "first")
                {
                    await finish.Task.WaitAsync(ct);
                }
            },
        };
        // An ack wait far longer than the test waits: the second command is finished by this run or not at all.
        await using var a = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url, concurrency: 1)], "worker-a",
            lease: lease, ackWait: TimeSpan.FromMinutes(5), hooks: hooks);
        var claims = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Worker = "reader" }, TimeProvider.System, cts.Token);
        var worker = a.Runtime.Workers.Single();
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "first", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await claims.GetAsync("acme", "first", cts.Token) is { State: ClaimRecord.Completed },
            s_timeout, "the first command completed and holding the finishing place");
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "second", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => a.Executed == 2, s_timeout, "the second command's effect to have run");
        await SagaHarness.WaitUntilAsync(async () => (await claims.GetAsync("acme", "second", cts.Token))!.LeaseUntilMs < DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            s_timeout, "the second command's lease to run out while it waits for the finishing place");

        // Its heartbeat back: its effect has run, so the keeper does not give it up for the lease that ran out, but
        // renews the lease (nobody took the claim over) and keeps the message in progress until it is completed.
        Volatile.Write(ref frozen, false);
        await SagaHarness.WaitUntilAsync(async () => (await claims.GetAsync("acme", "second", cts.Token))!.LeaseUntilMs > DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            s_timeout, "the second command's lease renewed");
        Assert.Equal(0, worker.LeasesLapsed);
        finish.SetResult();
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 2, TimeSpan.FromSeconds(30), "a result for both commands");

        Assert.Equal(0, worker.Lost);
        Assert.Equal(1, upstream.CallsFor("first"));
        Assert.Equal(1, upstream.CallsFor("second"));
        var second = (await claims.GetAsync("acme", "second", cts.Token))!;
        Assert.Equal((ClaimRecord.Completed, "worker-a", 1), (second.State, second.Worker, second.Attempt));
        var consumer = EffectWorker.ConsumerName("runner", "payment.charge", null);
        await SagaHarness.WaitUntilAsync(async () => (await js.GetConsumerAsync("WORKFLOW_COMMANDS", consumer, cts.Token)).Info.NumAckPending == 0, s_timeout, "both commands acked");
    }

    /// <summary>
    /// One worker of one slot (claiming one ahead): a first command holds the slot, its upstream call held until
    /// <see cref="ClaimedAhead.Release"/>; a second is claimed ahead, its heartbeat frozen (as in a paused process)
    /// until <see cref="ClaimedAhead.Unfreeze"/>. Returns once the second's lease has run out. The ack wait is far longer
    /// than a test waits, so the second comes back by its NAK or not at all.
    /// </summary>
    private async Task<ClaimedAhead> SecondClaimedAheadAsync(TimeSpan lease, CancellationToken cancellationToken)
    {
        var setup = await FreshAsync(cancellationToken);
        var (upstream, js) = (setup.Upstream, setup.Js);
        var release = new TaskCompletionSource();
        upstream.Respond("/charges", (request, _) => request.IdempotencyKey == "first" ? StubResponse.Hold(release.Task) : new StubResponse(201, """{"ok":true}"""));
        var frozen = new StrongBox<bool>(true);
        var hooks = new EffectWorkerHooks { FixedClaimAhead = 1, StallHeartbeat = id => id == "second" && Volatile.Read(ref frozen.Value) };
        var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url, concurrency: 1) with { TimeoutMs = 60_000 }], "worker-a",
            lease: lease, ackWait: TimeSpan.FromMinutes(5), hooks: hooks);
        var claims = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Worker = "reader" }, TimeProvider.System, cancellationToken);
        // The first holds the one slot before the second arrives, so the second is the one claimed ahead.
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "first", new { }), cancellationToken: cancellationToken);
        await SagaHarness.WaitUntilAsync(() => upstream.CallsFor("first") == 1, s_timeout, "the first command holding the one slot");
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "second", new { }), cancellationToken: cancellationToken);
        await SagaHarness.WaitUntilAsync(async () => await claims.GetAsync("acme", "second", cancellationToken) is { State: ClaimRecord.Running, Worker: "worker-a", Attempt: 1 },
            s_timeout, "the second command claimed ahead");
        await SagaHarness.WaitUntilAsync(async () => (await claims.GetAsync("acme", "second", cancellationToken))!.LeaseUntilMs < DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            s_timeout, "the second command's lease to run out");
        return new ClaimedAhead(setup, node, claims, release, () => Volatile.Write(ref frozen.Value, false));
    }

    private sealed record ClaimedAhead(Fresh Fresh, EffectNode Node, EffectClaims Claims, TaskCompletionSource Release, Action Unfreeze) : IAsyncDisposable
    {
        public StubUpstream Upstream => Fresh.Upstream;

        public NatsJSContext Js => Fresh.Js;

        public EffectWorker Worker => Node.Runtime.Workers.Single();

        public async ValueTask DisposeAsync()
        {
            await Node.DisposeAsync();
            await Fresh.DisposeAsync();
        }
    }

    /// <summary>A stub upstream, a connection, and fresh effect streams.</summary>
    private async Task<Fresh> FreshAsync(CancellationToken cancellationToken)
    {
        var upstream = await StubUpstream.StartAsync(cancellationToken);
        var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cancellationToken);
        return new Fresh(upstream, connection, js);
    }

    /// <summary>As <see cref="FreshAsync"/>, with an upstream that holds every call until <see cref="Held.Release"/> is completed.</summary>
    private async Task<Held> HeldAsync(CancellationToken cancellationToken)
    {
        var fresh = await FreshAsync(cancellationToken);
        var release = new TaskCompletionSource();
        fresh.Upstream.Respond("/charges", (_, _) => StubResponse.Hold(release.Task));
        return new Held(fresh, release);
    }

    private sealed record Fresh(StubUpstream Upstream, NATS.Client.Core.NatsConnection Connection, NatsJSContext Js) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            await Upstream.DisposeAsync();
        }
    }

    private sealed record Held(Fresh Fresh, TaskCompletionSource Release) : IAsyncDisposable
    {
        public StubUpstream Upstream => Fresh.Upstream;

        public NatsJSContext Js => Fresh.Js;

        public ValueTask DisposeAsync() => Fresh.DisposeAsync();
    }
}
