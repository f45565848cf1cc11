using System.Diagnostics;
using Runner.Testing;

namespace Runner.Bench.Cold;

/// <summary>A published <c>runner serve</c> started as a child process on a free loopback HTTP port; its last lines kept.</summary>
internal sealed class RunnerChild : IDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private readonly HttpClient _http;

    private RunnerChild(Process process, int port, long started)
    {
        _process = process;
        Started = started;
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(2) };
        ExitedTask = process.WaitForExitAsync();
    }

    public long Started { get; }

    public int Pid => _process.Id;

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(Started);

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public Task ExitedTask { get; }

    /// <summary>Starts <c>runner serve</c> from <paramref name="directory"/> (its apphost, else <c>dotnet runner.dll</c>).</summary>
    public static RunnerChild Start(string directory, IReadOnlyDictionary<string, string> environment)
    {
        var apphost = Path.Combine(directory, "runner");
        var start = File.Exists(apphost) ? new ProcessStartInfo(apphost) : new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(directory, "runner.dll") } };
        start.ArgumentList.Add("serve");
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("RUNNER_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }
        var port = NatsServerFixture.FreePort();
        start.Environment["RUNNER_HTTP_URLS"] = $"http://127.0.0.1:{port}";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        var started = Stopwatch.GetTimestamp();
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start runner");
        var child = new RunnerChild(process, port, started);
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>
    /// Where every line of every runner goes too, with the milliseconds since its start: <c>BENCH_RUNNER_LOG</c>, for a
    /// look at what a start spends its time on. Opened once, for the bench's life; written under its own lock.
    /// </summary>
    private static readonly StreamWriter? s_log = Environment.GetEnvironmentVariable("BENCH_RUNNER_LOG") is { Length: > 0 } path
        ? new StreamWriter(path, append: true) { AutoFlush = true }
        : null;

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_tail)
        {
            if (s_log is not null)
            {
                lock (s_log)
                {
                    s_log.WriteLine(Text.Inv($"[{_process.Id} +{Elapsed.TotalMilliseconds,7:F0} ms] {line}"));
                }
            }
            _tail.Enqueue(line);
            while (_tail.Count > 40)
            {
                _tail.Dequeue();
            }
        }
    }

    public string Tail()
    {
        lock (_tail)
        {
            return string.Join(Environment.NewLine, _tail.Select(l => "    | " + l));
        }
    }

    /// <summary>
    /// Waits up to a minute for <c>/ready</c>; returns the time since start. A runner that exits first (a bad setting in a
    /// variant) or never answers fails its run: said on <paramref name="output"/>, and null.
    /// </summary>
    public async Task<TimeSpan?> ReadyOrFailedAsync(TextWriter output, CancellationToken cancellationToken)
    {
        try
        {
            return await WaitReadyAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            output.WriteLine(Text.Inv($"  FAILED: {ex.Message}"));
            return null;
        }
    }

    /// <summary>Polls <c>/ready</c> until it answers 200; returns the time since start.</summary>
    private async Task<TimeSpan> WaitReadyAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        while (Elapsed < within)
        {
            if (HasExited)
            {
                throw new InvalidOperationException($"the runner exited with {ExitCode} before it was ready:\n{Tail()}");
            }
            try
            {
                using var response = await _http.GetAsync(new Uri("ready", UriKind.Relative), cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return Elapsed;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // slow to answer while it starts
            }
            await Task.Delay(20, cancellationToken);
        }
        throw new TimeoutException($"the runner was not ready within {within.TotalSeconds:F0} s:\n{Tail()}");
    }

    /// <summary>
    /// The runner's own GC and JIT totals and its store-commit and dispatch histograms from <c>/metrics</c> (the
    /// runtime's meters and Runner's, as an operator's Prometheus scrapes them); null when it does not answer in time.
    /// One request, at the edges of a window only.
    /// </summary>
    public async Task<MetricsReading?> MetricsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var text = await _http.GetStringAsync(new Uri("metrics", UriKind.Relative), cancellationToken);
            var at = Stopwatch.GetTimestamp();
            double? pause = null;
            double? allocated = null;
            double? jit = null;
            double? jitMethods = null;
            var collections = new long[3];
            // Cumulative counts of the store's commits and the relay's dispatches up to each bucket edge, +Inf last.
            var commits = new double[MetricsReading.Edges.Length + 1];
            var dispatches = new double[MetricsReading.Edges.Length + 1];
            var commitsRead = false;
            var dispatchesRead = false;
            foreach (var line in text.Split('\n'))
            {
                if (!TryReading(line, out var name, out var value))
                {
                    continue;
                }
                switch (name)
                {
                    case "system_runtime_dotnet_gc_pause_time": pause = value; break;
                    case "system_runtime_dotnet_jit_compilation_time": jit = value; break;
                    case "system_runtime_dotnet_jit_compiled_methods": jitMethods = value; break;
                    case "system_runtime_dotnet_gc_collections{gc_heap_generation=\"gen0\"}": collections[0] = (long)value; break;
                    case "system_runtime_dotnet_gc_collections{gc_heap_generation=\"gen1\"}": collections[1] = (long)value; break;
                    case "system_runtime_dotnet_gc_collections{gc_heap_generation=\"gen2\"}": collections[2] = (long)value; break;
                    default:
                        if (name.StartsWith("system_runtime_dotnet_gc_heap_total_allocated", StringComparison.Ordinal))
                        {
                            allocated = value;
                        }
                        commitsRead |= ReadBucket(name, CommitBuckets, value, commits);
                        dispatchesRead |= ReadBucket(name, DispatchBuckets, value, dispatches);
                        break;
                }
            }
            return pause is { } seconds ? new MetricsReading(at, seconds, collections[0], collections[1], collections[2], allocated, jit, jitMethods, commitsRead ? commits : null, dispatchesRead ? dispatches : null) : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The sum of every series of the counter <paramref name="name"/> on <c>/metrics</c> (all its labels); null when it does not answer.</summary>
    public async Task<long?> CounterAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var text = await _http.GetStringAsync(new Uri("metrics", UriKind.Relative), cancellationToken);
            var sum = 0L;
            foreach (var line in text.Split('\n'))
            {
                if (TryReading(line, out var series, out var value) && series.StartsWith(name, StringComparison.Ordinal)
                    && (series.Length == name.Length || series[name.Length] == '{'))
                {
                    sum += (long)value;
                }
            }
            return sum;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>A line of <c>/metrics</c> as <c>name{labels} value</c>; comments and lines without a number are not readings.</summary>
    private static bool TryReading(string line, out ReadOnlySpan<char> series, out double value)
    {
        var space = line.LastIndexOf(' ');
        series = space > 0 ? line.AsSpan(0, space) : default;
        value = 0;
        return !line.StartsWith('#') && space > 0
            && double.TryParse(line.AsSpan(space + 1), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out value);
    }

    private const string CommitBuckets = "runner_lmdb_commit_duration_seconds_bucket{le=\"";

    private const string DispatchBuckets = "runner_outbox_dispatch_latency_seconds_bucket{le=\"";

    /// <summary>Reads one bucket of the histogram <paramref name="prefix"/> names into <paramref name="counts"/>; false for any other series.</summary>
    private static bool ReadBucket(ReadOnlySpan<char> name, string prefix, double value, double[] counts)
    {
        if (!name.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var le = name[prefix.Length..].TrimEnd("\"}");
        var edge = le.SequenceEqual("+Inf") ? MetricsReading.Edges.Length : Array.IndexOf(MetricsReading.Edges, le.ToString());
        if (edge < 0)
        {
            return false;
        }
        counts[edge] = value;
        return true;
    }

    /// <summary>
    /// Asks the runner to stop (SIGTERM, as an orchestrator does) and waits a while for it to exit, so what it
    /// writes on the way out (an EventPipe trace of a variant) is complete; kills it when it does not.
    /// </summary>
    public async Task StopAsync(TimeSpan within)
    {
        if (!_process.HasExited)
        {
            using var signal = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false });
            if (signal is not null)
            {
                await signal.WaitForExitAsync();
                await Task.WhenAny(ExitedTask, Task.Delay(within));
            }
        }
        Kill();
    }

    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
    }

    public void Dispose()
    {
        Kill();
        _http.Dispose();
        _process.Dispose();
    }
}

/// <summary>
/// A runner's totals at one moment: GC pause time (seconds), collections per generation (gen0 counts every
/// collection), bytes allocated since it started, the JIT's compiling time (seconds, every thread's) and methods
/// compiled (null when the runtime does not report them), and the cumulative buckets of its store-commit and
/// dispatch histograms (null before either recorded anything).
/// </summary>
internal readonly record struct MetricsReading(long Timestamp, double PauseSeconds, long Gen0, long Gen1, long Gen2, double? AllocatedBytes,
    double? JitSeconds = null, double? JitMethods = null, double[]? Commits = null, double[]? Dispatches = null)
{
    /// <summary>The histograms' bucket edges read (seconds, as <c>le</c> labels them): 6.4, 12.8 and 25.6 ms, of the runner's buckets that double from 0.1 ms.</summary>
    public static readonly string[] Edges = ["0.0064", "0.0128", "0.0256"];

    private static readonly string s_overEdges = string.Join(" / ", Edges.Select(e => Text.Inv($"{double.Parse(e, System.Globalization.CultureInfo.InvariantCulture) * 1000:0.#}")));

    /// <summary>
    /// "412 store commits, 9 / 3 / 0 over 6.4 / 12.8 / 25.6 ms; 80 commands dispatched, …" between <paramref name="from"/>
    /// and this reading (a dispatch: from the transition's commit to the command's PubAck); empty for a histogram either
    /// reading lacks.
    /// </summary>
    public string SlowSince(MetricsReading from) => Over(Commits, from.Commits, "store commits") + Over(Dispatches, from.Dispatches, "commands dispatched");

    /// <remarks>A histogram that is not there yet at the window's start has recorded nothing: zeros.</remarks>
    private static string Over(double[]? now, double[]? then, string what)
    {
        if (now is null)
        {
            return string.Empty;
        }
        then ??= new double[now.Length];
        var all = now[^1] - then[^1];
        return Text.Inv($"; {all:F0} {what}, {string.Join(" / ", Edges.Select((_, edge) => Text.Inv($"{all - (now[edge] - then[edge]):F0}")))} over {s_overEdges} ms");
    }

    /// <summary>"paused 3.1 % of wall (gen0/1/2 12/3/1)" between <paramref name="from"/> and this reading, over <paramref name="events"/> events.</summary>
    public MetricsWindow Since(MetricsReading from, int events) => new(
        (PauseSeconds - from.PauseSeconds) / Stopwatch.GetElapsedTime(from.Timestamp, Timestamp).TotalSeconds,
        Gen0 - from.Gen0, Gen1 - from.Gen1, Gen2 - from.Gen2,
        AllocatedBytes - from.AllocatedBytes is { } bytes ? bytes / 1024 / events : null,
        JitSeconds - from.JitSeconds is { } jit ? jit * 1000 : null,
        JitMethods - from.JitMethods is { } methods ? (long)methods : null);
}

/// <summary>GC pauses over a window as a share of its wall time, the collections in it, what the process allocated per event in it, and what the JIT compiled.</summary>
internal readonly record struct MetricsWindow(double PauseShare, long Gen0, long Gen1, long Gen2, double? AllocatedKiBPerEvent,
    double? JitMs = null, long? JitMethods = null)
{
    public override string ToString() =>
        Text.Inv($"allocated {(AllocatedKiBPerEvent is { } kib ? kib.ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "?")} KiB/event, GC paused {PauseShare:P1} of wall (collections gen0/1/2 {Gen0}/{Gen1}/{Gen2})")
        + (JitMs is { } ms && JitMethods is { } methods ? Text.Inv($", JIT compiled {methods} methods in {ms:F0} ms") : "");
}
