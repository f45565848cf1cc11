using System.Diagnostics;
using NATS.Client.Core;
using Xunit;

namespace Runner.Testing;

/// <summary>
/// A real three-node JetStream cluster on loopback (servers n1..n3 of cluster "runner-test"),
/// started from the <c>nats-server</c> binary with a config file and store per node. Nodes can be
/// killed and started again on the same ports and store, to test what survives losing a server.
/// A missing binary fails the tests loudly.
/// </summary>
public sealed class NatsClusterFixture : IAsyncLifetime
{
    private const string ClusterName = "runner-test";
    private const int Size = 3;
    private static readonly TimeSpan s_readyTimeout = TimeSpan.FromSeconds(60);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "runner-test-nats-cluster-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly NatsClusterNode[] _nodes;
    private string _binary = string.Empty;

    public NatsClusterFixture()
    {
        _nodes = [.. Enumerable.Range(1, Size).Select(i => new NatsClusterNode($"n{i}", Path.Combine(_root, $"n{i}")))];
    }

    /// <summary>All nodes' client URLs, comma-separated, as <see cref="NatsOpts.Url"/> takes them.</summary>
    public string Url => string.Join(',', NodeUrls);

    /// <summary>Each node's client URL; index i is node i of <see cref="KillAsync"/> and <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<string> NodeUrls => [.. _nodes.Select(n => n.Url)];

    public async Task InitializeAsync()
    {
        _binary = NatsServerFixture.FindBinary() ?? throw new InvalidOperationException(
            "nats-server not found on PATH: install it (apt-get install -y nats-server)");
        var clock = Stopwatch.StartNew();
        // A port FreePort found may be taken before the server binds it; that server exits at
        // once, and the whole cluster starts again on fresh ports since the routes name them.
        for (var attempt = 1; ; attempt++)
        {
            foreach (var node in _nodes)
            {
                node.Reset();
            }
            foreach (var node in _nodes)
            {
                node.WriteConfig(ClusterName, _nodes.Where(other => other != node).Select(other => other.RouteUrl));
                node.Start(_binary);
            }
            try
            {
                await WaitReadyAsync(_nodes, forming: true, Remaining(clock), CancellationToken.None);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5 && _nodes.Any(n => n.HasExited))
            {
                foreach (var node in _nodes)
                {
                    await node.KillAsync(CancellationToken.None);
                }
            }
        }
    }

    /// <summary>The index of the node with this server name, e.g. a stream's leader.</summary>
    public int NodeOf(string serverName)
    {
        var index = Array.FindIndex(_nodes, n => n.Name == serverName);
        return index >= 0 ? index : throw new ArgumentException($"no node named '{serverName}'", nameof(serverName));
    }

    /// <summary>Kills node <paramref name="node"/> (0-based) with SIGKILL.</summary>
    public Task KillAsync(int node, CancellationToken cancellationToken) => Node(node).KillAsync(cancellationToken);

    /// <summary>
    /// Starts a killed node again on its ports and store, and waits until it is back in the
    /// cluster with its streams caught up — or, with <paramref name="caughtUp"/> false, only until
    /// it serves JetStream again (under load its many consumers can take long to be current).
    /// </summary>
    public async Task StartAsync(int node, CancellationToken cancellationToken, bool caughtUp = true)
    {
        var member = Node(node);
        member.Start(_binary);
        await WaitReadyAsync([member], forming: false, s_readyTimeout, cancellationToken, caughtUp);
    }

    /// <summary>Kills a node, leaves it down for <paramref name="downtime"/>, then starts it as <see cref="StartAsync"/> does.</summary>
    public async Task RestartAsync(int node, TimeSpan downtime, CancellationToken cancellationToken)
    {
        await KillAsync(node, cancellationToken);
        await Task.Delay(downtime, cancellationToken);
        await StartAsync(node, cancellationToken);
    }

    /// <summary>Node <paramref name="node"/>'s own copy of <paramref name="stream"/>: messages held and first sequence (null when it holds none).</summary>
    public Task<(ulong Messages, ulong FirstSeq, DateTimeOffset Created)?> LocalStreamAsync(int node, string stream, CancellationToken cancellationToken) =>
        Node(node).LocalStreamAsync(_http, stream, cancellationToken);

    public async Task<NatsConnection> ConnectAsync()
    {
        var connection = new NatsConnection(new NatsOpts { Url = Url, Name = "runner-tests" });
        await connection.ConnectAsync();
        return connection;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.KillAsync(CancellationToken.None);
        }
        _http.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }

    private NatsClusterNode Node(int node)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, _nodes.Length);
        return _nodes[node];
    }

    /// <summary>
    /// Forming: every node has JetStream up and the meta leader counts all its followers current,
    /// so an R3 stream can be placed at once. Otherwise: these nodes pass the full health check.
    /// </summary>
    private async Task WaitReadyAsync(IReadOnlyList<NatsClusterNode> nodes, bool forming, TimeSpan timeout, CancellationToken cancellationToken, bool caughtUp = true)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (true)
            {
                if (nodes.FirstOrDefault(n => !n.IsRunning) is { } exited)
                {
                    throw new InvalidOperationException($"nats-server {exited.Name} exited before it was ready{Environment.NewLine}{Describe()}");
                }
                var views = new List<NatsMetaView>();
                foreach (var node in nodes)
                {
                    if (await node.ProbeAsync(_http, caughtUp: !forming && caughtUp, deadline.Token) is { } view)
                    {
                        views.Add(view);
                    }
                }
                if (views.Count == nodes.Count && (!forming || views.Any(v => v.CurrentFollowers == Size - 1)))
                {
                    return;
                }
                await Task.Delay(50, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"nats cluster not ready within {timeout.TotalSeconds:0}s (waiting on {string.Join(", ", nodes.Select(n => n.Name))}){Environment.NewLine}{Describe()}");
        }
    }

    private static TimeSpan Remaining(Stopwatch clock) => clock.Elapsed < s_readyTimeout ? s_readyTimeout - clock.Elapsed : TimeSpan.Zero;

    private string Describe() => string.Join(Environment.NewLine, _nodes.Select(n => n.Describe()));
}
