using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using Runner.Effects.Claims;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// A claim whose create gets no PubAck, on a server of its own where the writing user may not
/// subscribe to replies: the server stores (or refuses) the write, and no PubAck ever reaches the
/// writer. What the claim decides then is read from the key, through another connection.
/// </summary>
public sealed class LostPubAckTests : IAsyncLifetime
{
    private const string Bucket = "CLAIMS_LOST_ACK";

    private readonly NatsServerFixture _nats = NatsServerFixture.WithConfig("""
        authorization {
          users = [
            { user: "full", password: "full" }
            { user: "deaf", password: "deaf", permissions: { publish: ">", subscribe: { deny: "_INBOX.>" } } }
            { user: "blocked", password: "blocked", permissions: { publish: { deny: "$KV.>" }, subscribe: { deny: "_INBOX.>" } } }
          ]
        }
        """);

    public Task InitializeAsync() => _nats.InitializeAsync();

    public Task DisposeAsync() => _nats.DisposeAsync();

    /// <summary>A writer waits 2 s for a PubAck that cannot come (the server stores what it may long before); the reader keeps the client's default (creating the bucket can take longer).</summary>
    private async Task<NatsConnection> ConnectAsync(string user)
    {
        var url = new UriBuilder(_nats.Url) { UserName = user, Password = user }.Uri.ToString();
        var opts = new NatsOpts { Url = url, Name = "runner-tests-" + user };
        var connection = new NatsConnection(user == "full" ? opts : opts with { RequestTimeout = TimeSpan.FromSeconds(2) });
        await connection.ConnectAsync();
        return connection;
    }

    /// <summary>Claims written by <paramref name="user"/> and read through a connection that sees everything.</summary>
    private async Task<Setup> ClaimsAsync(string user, CancellationToken cancellationToken)
    {
        var full = await ConnectAsync("full");
        var writing = await ConnectAsync(user);
        var reader = await EffectClaims.OpenAsync(new NatsJSContext(full), new EffectClaimOptions { Bucket = Bucket, Worker = "reader" }, TimeProvider.System, cancellationToken);
        var store = await new NatsKVContext(new NatsJSContext(full)).GetStoreAsync(Bucket, cancellationToken);
        var writer = EffectClaims.Create(store, writing, new EffectClaimOptions { Bucket = Bucket, Worker = "writer" }, TimeProvider.System);
        return new Setup(writer, reader, full, writing);
    }

    private sealed record Setup(EffectClaims Writer, EffectClaims Reader, NatsConnection Full, NatsConnection Writing) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Writing.DisposeAsync();
            await Full.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_create_stored_without_a_PubAck_is_read_back_and_the_claim_is_won()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var setup = await ClaimsAsync("deaf", cts.Token);
        var (writer, reader) = (setup.Writer, setup.Reader);

        var decision = await writer.ClaimAsync("acme", "lost-ack-1", cts.Token);

        var claim = Assert.IsType<ClaimDecision.Claimed>(decision).Claim;
        Assert.Equal(1, claim.Attempt);
        Assert.False(claim.Takeover);
        var stored = await reader.GetAsync("acme", "lost-ack-1", cts.Token);
        Assert.Equal("writer", stored?.Worker);
        Assert.Equal(ClaimRecord.Running, stored?.State);
        Assert.Equal("writer", Assert.IsType<ClaimDecision.HeldElsewhere>(await reader.ClaimAsync("acme", "lost-ack-1", cts.Token)).Worker);
    }

    [Fact]
    public async Task A_create_never_stored_and_never_answered_fails_and_claims_nothing()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var setup = await ClaimsAsync("blocked", cts.Token);
        var (writer, reader) = (setup.Writer, setup.Reader);

        var error = await Assert.ThrowsAsync<TimeoutException>(async () => await writer.ClaimAsync("acme", "lost-ack-2", cts.Token));
        Assert.Contains("no PubAck", error.Message, StringComparison.Ordinal);

        Assert.Null(await reader.GetAsync("acme", "lost-ack-2", cts.Token));
        Assert.IsType<ClaimDecision.Claimed>(await reader.ClaimAsync("acme", "lost-ack-2", cts.Token));
    }
}
