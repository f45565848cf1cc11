using NATS.Client.JetStream;
using Runner.Effects.Claims;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

public sealed class ClaimTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    private async Task<(EffectClaims A, EffectClaims B, IAsyncDisposable Connection)> OpenAsync(string bucket, TimeSpan lease)
    {
        var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        var a = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Bucket = bucket, Lease = lease, Worker = "worker-a" }, TimeProvider.System, CancellationToken.None);
        var b = await EffectClaims.OpenAsync(js, new EffectClaimOptions { Bucket = bucket, Lease = lease, Worker = "worker-b" }, TimeProvider.System, CancellationToken.None);
        return (a, b, connection);
    }

    [Fact]
    public async Task A_claim_held_by_a_live_worker_is_left_alone_by_another()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var (a, b, connection) = await OpenAsync("CLAIMS_HELD", TimeSpan.FromSeconds(30));
        await using var _ = connection;

        var first = await a.ClaimAsync("acme", "cmd-1", cts.Token);
        var second = await b.ClaimAsync("acme", "cmd-1", cts.Token);

        var claimed = Assert.IsType<ClaimDecision.Claimed>(first);
        Assert.Equal(1, claimed.Claim.Attempt);
        Assert.False(claimed.Claim.Takeover);
        var held = Assert.IsType<ClaimDecision.HeldElsewhere>(second);
        Assert.Equal("worker-a", held.Worker);
        Assert.InRange(held.Remaining, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_completed_claim_hands_back_the_stored_result_instead_of_a_new_run()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var (a, b, connection) = await OpenAsync("CLAIMS_DONE", TimeSpan.FromSeconds(30));
        await using var _ = connection;

        var claim = Assert.IsType<ClaimDecision.Claimed>(await a.ClaimAsync("acme", "cmd-2", cts.Token)).Claim;
        Assert.True(await claim.CompleteAsync("workflow.evt.acme.x.succeeded", "{\"id\":\"result:cmd-2\"}"u8.ToArray(), cts.Token));

        var again = await b.ClaimAsync("acme", "cmd-2", cts.Token);
        var completed = Assert.IsType<ClaimDecision.AlreadyCompleted>(again);
        Assert.Equal("workflow.evt.acme.x.succeeded", completed.Record.ResultSubject);
        Assert.Equal("{\"id\":\"result:cmd-2\"}", System.Text.Encoding.UTF8.GetString(completed.Record.ResultEvent!));
        Assert.Equal("worker-a", completed.Record.Worker);
    }

    [Fact]
    public async Task An_expired_lease_is_taken_over_once_and_the_old_holder_can_no_longer_renew_or_complete()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var (a, b, connection) = await OpenAsync("CLAIMS_LEASE", TimeSpan.FromMilliseconds(500));
        await using var _ = connection;

        var old = Assert.IsType<ClaimDecision.Claimed>(await a.ClaimAsync("acme", "cmd-3", cts.Token)).Claim;
        ClaimDecision decision = new ClaimDecision.HeldElsewhere("", TimeSpan.Zero);
        await SagaHarness.WaitUntilAsync(async () =>
        {
            decision = await b.ClaimAsync("acme", "cmd-3", cts.Token);
            return decision is ClaimDecision.Claimed;
        }, s_timeout, "the lease to run out");

        var taken = ((ClaimDecision.Claimed)decision).Claim;
        Assert.True(taken.Takeover);
        Assert.Equal(2, taken.Attempt);
        Assert.Equal("worker-a", taken.PreviousWorker);
        Assert.False(await old.RenewAsync(cts.Token));
        Assert.False(await old.CompleteAsync("s", "{}"u8.ToArray(), cts.Token));
        Assert.True(await taken.CompleteAsync("s", "{}"u8.ToArray(), cts.Token));
        var record = await b.GetAsync("acme", "cmd-3", cts.Token);
        Assert.Equal(ClaimRecord.Completed, record!.State);
        Assert.Equal("worker-b", record.Worker);
        Assert.Equal(2, record.Attempt);
    }

    [Fact]
    public async Task Of_many_concurrent_claimers_exactly_one_wins()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var connection = await nats.ConnectAsync();
        await using var _ = connection;
        var js = new NatsJSContext(connection);
        var claimers = new List<EffectClaims>();
        for (var i = 0; i < 16; i++)
        {
            claimers.Add(await EffectClaims.OpenAsync(js, new EffectClaimOptions { Bucket = "CLAIMS_RACE", Worker = $"w{i}" }, TimeProvider.System, cts.Token));
        }

        for (var round = 0; round < 10; round++)
        {
            var command = $"race-{round}";
            var decisions = await Task.WhenAll(claimers.Select(c => c.ClaimAsync("acme", command, cts.Token).AsTask()));
            Assert.Single(decisions.OfType<ClaimDecision.Claimed>());
            Assert.Equal(15, decisions.OfType<ClaimDecision.HeldElsewhere>().Count());
        }
    }

    [Fact]
    public async Task A_released_claim_is_created_afresh_by_the_next_worker_each_time_it_is_released()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var (a, b, connection) = await OpenAsync("CLAIMS_RELEASED", TimeSpan.FromSeconds(30));
        await using var _ = connection;

        for (var round = 0; round < 3; round++)
        {
            var (holder, next) = round % 2 == 0 ? (a, b) : (b, a);
            var held = Assert.IsType<ClaimDecision.Claimed>(await holder.ClaimAsync("acme", "cmd-released", cts.Token)).Claim;
            Assert.True(await held.ReleaseAsync(cts.Token));

            // The key now ends in a delete marker: a create must go in at the marker's revision, as a first claim.
            var taken = Assert.IsType<ClaimDecision.Claimed>(await next.ClaimAsync("acme", "cmd-released", cts.Token)).Claim;
            Assert.Equal(1, taken.Attempt);
            Assert.False(taken.Takeover);
            var stored = await holder.GetAsync("acme", "cmd-released", cts.Token);
            Assert.Equal(next.Worker, stored?.Worker);
            Assert.Equal(next.Worker, Assert.IsType<ClaimDecision.HeldElsewhere>(await holder.ClaimAsync("acme", "cmd-released", cts.Token)).Worker);
            Assert.True(await taken.ReleaseAsync(cts.Token));
        }
    }

    [Fact]
    public async Task Same_command_id_in_two_tenants_is_two_claims()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var (a, b, connection) = await OpenAsync("CLAIMS_TENANTS", TimeSpan.FromSeconds(30));
        await using var _ = connection;

        Assert.IsType<ClaimDecision.Claimed>(await a.ClaimAsync("acme", "shared-id", cts.Token));
        Assert.IsType<ClaimDecision.Claimed>(await b.ClaimAsync("globex", "shared-id", cts.Token));
    }

    [Theory]
    [InlineData("acme", "acme")]
    [InlineData("Ab-_09", "Ab-_09")]
    [InlineData("a.b", "a=2Eb")]
    [InlineData("x=y/z", "x=3Dy=2Fz")]
    [InlineData("ü", "=C3=BC")]
    [InlineData("", "")]
    public void A_part_is_escaped_byte_by_byte_and_a_plain_one_is_left_as_it_is(string part, string escaped)
    {
        Assert.Equal(escaped, ClaimKeys.Escape(part));
        if (part == escaped)
        {
            Assert.Same(part, ClaimKeys.Escape(part));
        }
    }

    [Theory]
    [InlineData("acme", "a.b", "acme.a", "b")]
    [InlineData("t", "x=2E", "t", "x.")]
    [InlineData("t", "ü/ö", "t", "ü=2F=C3")]
    public void Claim_keys_never_collide_and_use_only_key_characters(string tenant1, string id1, string tenant2, string id2)
    {
        var first = ClaimKeys.For(tenant1, id1);
        var second = ClaimKeys.For(tenant2, id2);

        Assert.NotEqual(first, second);
        Assert.Matches("^[-/_=.a-zA-Z0-9]+$", first);
        Assert.Matches("^[-/_=.a-zA-Z0-9]+$", second);
        Assert.Single(first, '.');
    }
}
