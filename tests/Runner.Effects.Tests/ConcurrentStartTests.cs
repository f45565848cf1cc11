using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using Runner.Effects.Claims;
using Runner.Messaging;
using Runner.Sagas.Ownership;
using Runner.Sagas.Snapshots;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// Replicas deployed together create the same streams and buckets at the same moment. The server
/// answers the losers of such a race with "name already in use" or, on some versions, "subjects
/// overlap with an existing stream": neither may end a replica's start.
/// </summary>
public sealed class ConcurrentStartTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const int Starters = 6;
    private const int Rounds = 100;

    [Fact]
    public async Task Replicas_creating_the_same_streams_and_buckets_at_once_all_start()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        var settings = new JetStreamSettings();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        // One connection each, as replicas have: the server answers one connection's API requests in turn.
        var own = new List<NATS.Client.Core.NatsConnection>();
        for (var i = 0; i < Starters; i++)
        {
            own.Add(await nats.ConnectAsync());
        }
        for (var round = 0; round < Rounds; round++)
        {
            await EffectStreams.DeleteAllAsync(js, cts.Token);
            using var go = new SemaphoreSlim(0, Starters);
            var starters = own.Select(c => Task.Run(async () =>
            {
                var replica = new NatsJSContext(c);
                await go.WaitAsync(cts.Token);
                await StreamTopology.EnsureAsync(replica, settings, NullLogger.Instance, cts.Token);
                await OwnershipBucket.OpenAsync(replica, "RUNNER_OWNERSHIP_RACE", 1, 8, TimeProvider.System, cts.Token);
                await ObjectBuckets.OpenAsync(replica, "RUNNER_OBJECTS_RACE", 1, "race", cts.Token);
                await EffectClaims.OpenAsync(replica, new EffectClaimOptions { Bucket = "RUNNER_CLAIMS_RACE", Worker = "w" }, TimeProvider.System, cts.Token);
            }, cts.Token)).ToList();
            go.Release(Starters);
            await Task.WhenAll(starters);

            foreach (var config in StreamTopology.Configs(settings))
            {
                var stream = await js.GetStreamAsync(config.Name!, cancellationToken: cts.Token);
                Assert.Equal(config.Subjects, stream.Info.Config.Subjects);
            }
            foreach (var stream in new[] { "KV_RUNNER_OWNERSHIP_RACE", "OBJ_RUNNER_OBJECTS_RACE", "KV_RUNNER_CLAIMS_RACE" })
            {
                Assert.Equal(stream, (await js.GetStreamAsync(stream, cancellationToken: cts.Token)).Info.Config.Name);
            }
        }
        foreach (var c in own)
        {
            await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_stream_whose_subjects_another_stream_holds_is_refused_naming_that_stream()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await EffectStreams.DeleteAllAsync(js, cts.Token);
        await js.CreateStreamAsync(new NATS.Client.JetStream.Models.StreamConfig("SOMEONE_ELSES", ["aggregate.>"]), cts.Token);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => StreamTopology.EnsureAsync(js, new JetStreamSettings(), NullLogger.Instance, cts.Token));

        Assert.Contains("AGGREGATE_EVENTS", refused.Message);
        Assert.Contains("SOMEONE_ELSES", refused.Message);
        Assert.Equal(CreateOrOpen.SubjectsOverlap, Assert.IsType<NatsJSApiException>(refused.InnerException).Error.ErrCode);
        await Assert.ThrowsAsync<NatsJSApiException>(() => js.GetStreamAsync("AGGREGATE_EVENTS", cancellationToken: cts.Token).AsTask());
    }
}
