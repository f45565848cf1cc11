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

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_tail)
        {
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

    /// <summary>Polls <c>/ready</c> until it answers 200; returns the time since start.</summary>
    public async Task<TimeSpan> WaitReadyAsync(TimeSpan within, CancellationToken cancellationToken)
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
