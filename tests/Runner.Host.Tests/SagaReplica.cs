using System.Text;
using System.Text.Json.Nodes;
using Runner.Testing;

namespace Runner.Host.Tests;

/// <summary>What a replica's <c>GET /info</c> says about the partitions it holds.</summary>
internal sealed record ReplicaInfo(IReadOnlyList<int> Owned, IReadOnlyDictionary<int, long> Epochs);

/// <summary>
/// One saga replica: a real <c>runner serve</c> process with its own data directory, worker id and
/// HTTP port. Started again, it keeps all three, so a restart is the same worker coming back; the
/// output of every run is kept for the failure message.
/// </summary>
internal sealed class SagaReplica : IDisposable
{
    private readonly HttpClient _http;
    private readonly StringBuilder _earlierRuns = new();
    private RunnerProcess? _process;
    private bool _killed;

    /// <param name="executable">The runner to start, as <see cref="RunnerProcess.Start"/> takes it: null for <see cref="RunnerProcess.DefaultExecutable"/>.</param>
    public SagaReplica(string name, string dataDir, IReadOnlyDictionary<string, string> shared, string? executable = null)
    {
        Name = name;
        Executable = executable;
        WorkerId = $"{name}-{Guid.NewGuid().ToString("N")[..8]}";
        DataDir = dataDir;
        var port = NatsServerFixture.FreePort();
        Environment = new Dictionary<string, string>(shared, StringComparer.Ordinal)
        {
            ["RUNNER_DATA_DIR"] = dataDir,
            ["RUNNER_WORKER_ID"] = WorkerId,
            ["RUNNER_HTTP_URLS"] = $"http://127.0.0.1:{port}",
        };
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(2) };
    }

    public string Name { get; }

    public string? Executable { get; }

    public string WorkerId { get; }

    public string DataDir { get; }

    public Dictionary<string, string> Environment { get; }

    public RunnerProcess Process => _process ?? throw new InvalidOperationException($"replica {Name} was never started");

    /// <summary>Started, and neither killed nor exited.</summary>
    public bool Running => _process is { HasExited: false };

    /// <summary>The current run ended without the test killing it.</summary>
    public bool ExitedByItself => _process is { HasExited: true } && !_killed;

    /// <summary>The output of every run of this replica, oldest first.</summary>
    public string Output => _earlierRuns + (_process?.Output ?? string.Empty);

    /// <summary>The output of the current run alone.</summary>
    public string CurrentOutput => _process?.Output ?? string.Empty;

    public void Start()
    {
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                throw new InvalidOperationException($"replica {Name} is still running");
            }
            _earlierRuns.Append(_process.Output).AppendLine("----- (process ended; started again) -----");
            _process.Dispose();
        }
        _killed = false;
        _process = RunnerProcess.Start(["serve"], Environment, Executable);
    }

    /// <summary>SIGKILL: nothing of the runner's shutdown runs.</summary>
    public Task KillAsync(CancellationToken cancellationToken)
    {
        _killed = true;
        return Process.KillAsync(cancellationToken);
    }

    /// <summary>Loses the replica's disk: its data directory comes back empty (the process must be gone).</summary>
    public void WipeData()
    {
        if (Running)
        {
            throw new InvalidOperationException($"replica {Name} is still running");
        }
        if (Directory.Exists(DataDir))
        {
            Directory.Delete(DataDir, recursive: true);
        }
        Directory.CreateDirectory(DataDir);
    }

    /// <summary>The replica's <c>/info</c>, or null while it does not answer (starting, stopped, killed).</summary>
    public async Task<ReplicaInfo?> InfoAsync(CancellationToken cancellationToken)
    {
        if (await GetTextAsync("info", cancellationToken) is not { } text)
        {
            return null;
        }
        var body = JsonNode.Parse(text)!;
        var owned = body["owned_partitions"]!.AsArray().Select(p => p!.GetValue<int>()).ToList();
        var epochs = new Dictionary<int, long>();
        foreach (var lease in body["ownership"]?["partitions"]?.AsArray() ?? [])
        {
            var epoch = lease!["epoch"] ?? lease["lease"]?["epoch"];
            epochs[lease["partition"]!.GetValue<int>()] = epoch!.GetValue<long>();
        }
        return new ReplicaInfo(owned, epochs);
    }

    /// <summary>The <c>runtime</c> section of the replica's <c>/info</c>, or null while it does not answer.</summary>
    public async Task<JsonNode?> RuntimeAsync(CancellationToken cancellationToken) =>
        await GetTextAsync("info", cancellationToken) is { } text ? JsonNode.Parse(text)!["runtime"] : null;

    /// <summary>
    /// The partition consumers this replica's <c>/metrics</c> reports lag for (<c>runner_consumer_pending</c> on the inbox),
    /// or null while it does not answer.
    /// </summary>
    public async Task<IReadOnlySet<string>?> LagSeriesAsync(CancellationToken cancellationToken) =>
        await GetTextAsync("metrics", cancellationToken) is not { } text
            ? null
            : text.Split('\n')
                .Where(line => line.StartsWith("runner_consumer_pending{", StringComparison.Ordinal))
                .Select(line => System.Text.RegularExpressions.Regex.Match(line, "consumer=\"(runner-inbox-[^\"]+)\"").Groups[1].Value)
                .Where(consumer => consumer.Length > 0)
                .ToHashSet(StringComparer.Ordinal);

    /// <summary>The body of a GET on the replica's HTTP port, or null while it does not answer (starting, stopped, paused).</summary>
    private async Task<string?> GetTextAsync(string path, CancellationToken cancellationToken)
    {
        if (!Running)
        {
            return null;
        }
        try
        {
            using var response = await _http.GetAsync(new Uri(path, UriKind.Relative), cancellationToken);
            return response.IsSuccessStatusCode ? await response.Content.ReadAsStringAsync(cancellationToken) : null;
        }
        catch (HttpRequestException)
        {
            return null; // not listening (yet)
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null; // no answer within the client's timeout: paused or overloaded
        }
    }

    public string Tail(int chars = 5000)
    {
        var output = Output;
        return output[Math.Max(0, output.Length - chars)..];
    }

    public override string ToString() => $"{Name} ({WorkerId})";

    public void Dispose()
    {
        _process?.Dispose();
        _http.Dispose();
    }
}
