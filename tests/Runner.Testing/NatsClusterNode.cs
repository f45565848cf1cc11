using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Runner.Testing;

/// <summary>One nats-server of a <see cref="NatsClusterFixture"/>: its ports, config, store and process.</summary>
internal sealed class NatsClusterNode(string name, string directory)
{
    private const int KeptLines = 30;
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;
    private int _starts;

    public string Name { get; } = name;

    public int ClientPort { get; private set; }

    public int MonitorPort { get; private set; }

    public int ClusterPort { get; private set; }

    public string Url => $"nats://127.0.0.1:{ClientPort}";

    public string RouteUrl => $"nats-route://127.0.0.1:{ClusterPort}";

    public bool IsRunning => _process is { HasExited: false };

    public bool HasExited => _process is { HasExited: true };

    private string StoreDir => Path.Combine(directory, "store");

    private string ConfigPath => Path.Combine(directory, "nats.conf");

    /// <summary>Takes fresh ports and an empty store; only before the cluster first forms.</summary>
    public void Reset()
    {
        ClientPort = NatsServerFixture.FreePort();
        MonitorPort = NatsServerFixture.FreePort();
        ClusterPort = NatsServerFixture.FreePort();
        if (Directory.Exists(StoreDir))
        {
            Directory.Delete(StoreDir, recursive: true);
        }
        Directory.CreateDirectory(StoreDir);
    }

    // server_name and a cluster block with JetStream have no command-line flags in 2.9.
    public void WriteConfig(string clusterName, IEnumerable<string> routes)
    {
        var config = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"server_name: \"{Name}\"")
            .AppendLine(CultureInfo.InvariantCulture, $"listen: \"127.0.0.1:{ClientPort}\"")
            .AppendLine(CultureInfo.InvariantCulture, $"http: \"127.0.0.1:{MonitorPort}\"")
            .AppendLine(CultureInfo.InvariantCulture, $"jetstream {{ store_dir: \"{StoreDir}\" }}")
            .AppendLine("cluster {")
            .AppendLine(CultureInfo.InvariantCulture, $"  name: \"{clusterName}\"")
            .AppendLine(CultureInfo.InvariantCulture, $"  listen: \"127.0.0.1:{ClusterPort}\"")
            .AppendLine(CultureInfo.InvariantCulture, $"  routes: [{string.Join(", ", routes.Select(r => $"\"{r}\""))}]")
            .AppendLine("}");
        File.WriteAllText(ConfigPath, config.ToString());
    }

    public void Start(string binary)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException($"nats-server {Name} is already running");
        }
        _process?.Dispose();
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(ConfigPath);
        Keep($"--- start {++_starts} ---");
        _process = Process.Start(start) ?? throw new InvalidOperationException($"could not start nats-server {Name}");
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>SIGKILL, so the node gets no chance to hand over leadership or flush.</summary>
    public async Task KillAsync(CancellationToken cancellationToken)
    {
        if (_process is null)
        {
            return;
        }
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }
        await _process.WaitForExitAsync(cancellationToken);
        _process.Dispose();
        _process = null;
        Keep("--- killed ---");
    }

    /// <summary>
    /// What this node knows of the JetStream meta group, or null while it is not ready: JetStream
    /// must be up and a meta leader known; with <paramref name="caughtUp"/> the full health check
    /// must pass too, which in 2.9 also waits until this node is current with the meta leader and
    /// its streams.
    /// </summary>
    public async Task<NatsMetaView?> ProbeAsync(HttpClient http, bool caughtUp, CancellationToken cancellationToken)
    {
        try
        {
            if (!await IsOkAsync(http, "/healthz?js-enabled-only=true", cancellationToken)
                || (caughtUp && !await IsOkAsync(http, "/healthz", cancellationToken)))
            {
                return null;
            }
            using var response = await http.GetAsync(Monitor("/jsz"), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            using var jsz = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
            if (!jsz.RootElement.TryGetProperty("meta_cluster", out var meta)
                || !meta.TryGetProperty("leader", out var leader)
                || string.IsNullOrEmpty(leader.GetString()))
            {
                return null;
            }
            // Only the leader lists the meta group's followers.
            var current = meta.TryGetProperty("replicas", out var replicas)
                ? replicas.EnumerateArray().Count(r => r.TryGetProperty("current", out var c) && c.GetBoolean())
                : 0;
            return new NatsMetaView(leader.GetString()!, current);
        }
        catch (Exception e) when (e is HttpRequestException or JsonException)
        {
            // not listening yet, or cut off mid-answer by a kill
            return null;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // the HttpClient's own timeout: a server too busy to answer is not ready yet
            return null;
        }
    }

    /// <summary>
    /// This node's own copy of <paramref name="stream"/> (messages held, first sequence), as its
    /// monitoring port reports it; null when the node does not hold the stream.
    /// </summary>
    public async Task<(ulong Messages, ulong FirstSeq, DateTimeOffset Created)?> LocalStreamAsync(HttpClient http, string stream, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(Monitor("/jsz?accounts=true&streams=true"), cancellationToken);
        response.EnsureSuccessStatusCode();
        using var jsz = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
        if (!jsz.RootElement.TryGetProperty("account_details", out var accounts) || accounts.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        foreach (var account in accounts.EnumerateArray())
        {
            if (!account.TryGetProperty("stream_detail", out var streams) || streams.ValueKind != JsonValueKind.Array)
            {
                continue;
            }
            foreach (var detail in streams.EnumerateArray())
            {
                if (detail.GetProperty("name").GetString() == stream)
                {
                    var state = detail.GetProperty("state");
                    return (state.GetProperty("messages").GetUInt64(), state.GetProperty("first_seq").GetUInt64(), detail.GetProperty("created").GetDateTimeOffset());
                }
            }
        }
        return null;
    }

    public string Describe()
    {
        var state = _process switch
        {
            null => "not running",
            { HasExited: true } => $"exited with code {_process.ExitCode}",
            _ => $"running as pid {_process.Id}",
        };
        return $"{Name} (client {ClientPort}, monitor {MonitorPort}, cluster {ClusterPort}) {state}:{Environment.NewLine}  "
            + string.Join(Environment.NewLine + "  ", _output);
    }

    private async Task<bool> IsOkAsync(HttpClient http, string path, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(Monitor(path), cancellationToken);
        return response.IsSuccessStatusCode;
    }

    private Uri Monitor(string path) => new($"http://127.0.0.1:{MonitorPort}{path}");

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        while (_output.Count > KeptLines && _output.TryDequeue(out _))
        {
        }
    }
}

/// <summary>A node's view of the JetStream meta group: its leader, and if it is the leader, how many followers are current.</summary>
internal readonly record struct NatsMetaView(string Leader, int CurrentFollowers);
