using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Testing;

namespace Runner.Host.Tests.Operations;

/// <summary>
/// What every operations test starts with: a deadline, a connection to an emptied server (no
/// streams, no buckets) and a stub upstream; disposed in reverse.
/// </summary>
internal sealed class OpsScope : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly NatsConnection _connection;

    private OpsScope(CancellationTokenSource cts, NatsConnection connection, StubUpstream stub)
    {
        _cts = cts;
        _connection = connection;
        Js = new NatsJSContext(connection);
        Stub = stub;
    }

    public CancellationToken Token => _cts.Token;

    public INatsJSContext Js { get; }

    public StubUpstream Stub { get; }

    public static async Task<OpsScope> StartAsync(NatsServerFixture nats, TimeSpan? timeout = null)
    {
        var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        var connection = await nats.ConnectAsync();
        await RunnerNode.ResetServerAsync(new NatsJSContext(connection), cts.Token);
        return new OpsScope(cts, connection, await StubUpstream.StartAsync(cts.Token));
    }

    /// <summary>Makes <c>/work</c> hold its first <paramref name="held"/> calls until <paramref name="release"/>; returns when the first arrives.</summary>
    public Task HoldWork(Task release, int held = int.MaxValue)
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Stub.Respond("/work", (_, call) =>
        {
            arrived.TrySetResult();
            return call <= held ? StubResponse.Hold(release) : StubResponse.Ok;
        });
        return arrived.Task;
    }

    public async ValueTask DisposeAsync()
    {
        await Stub.DisposeAsync();
        await _connection.DisposeAsync();
        _cts.Dispose();
    }
}
