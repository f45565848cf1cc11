using System.Net;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>/ready of a saga replica: 200 once it holds and reads what it took at its start, not merely once it is up.</summary>
public sealed class ReadyTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Ready_answers_once_the_replica_holds_its_partitions_not_before()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        // Returns at the first 200 from /ready.
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct);
        var info = await node.GetAsync("info", ct);
        Assert.Equal(HttpStatusCode.OK, info.Status);
        var partitions = info.Body!["partitions"]!.GetValue<int>();
        Assert.Equal(Enumerable.Range(0, partitions), info.Body!["owned_partitions"]!.AsArray().Select(n => n!.GetValue<int>()));
        var ready = await node.GetAsync("ready", ct);
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        Assert.Empty(ready.Body!["failing"]!.AsArray());
        Assert.Equal(0, await node.TerminateAsync(ct));
    }
}
