using System.Diagnostics;
using System.Text;

namespace Runner.Testing;

/// <summary>The real <c>runner</c> executable, started as a child process (the native executable, or dotnet runner.dll).</summary>
internal sealed class RunnerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _standardOutput = new();

    private RunnerProcess(Process process)
    {
        _process = process;
    }

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "runner.dll");

    /// <summary>Names the build's <c>runner.dll</c> on the JIT where a test asks for it by name, whatever <see cref="DefaultExecutable"/> is.</summary>
    public const string Jit = "dotnet";

    /// <summary>
    /// What a test that names no runner starts: the native executable the test script publishes for every suite
    /// (<c>RUNNER_TEST_NATIVE_RUNNER</c>), which is what the image ships; without it, the build's <c>runner.dll</c> on the
    /// JIT, so that a test run from an IDE needs no publish first.
    /// </summary>
    public static string DefaultExecutable => Environment.GetEnvironmentVariable("RUNNER_TEST_NATIVE_RUNNER") is { Length: > 0 } native
        ? (File.Exists(native) ? native : throw new FileNotFoundException($"RUNNER_TEST_NATIVE_RUNNER points at {native}, which does not exist"))
        : Jit;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Standard output alone, in order. <see cref="Output"/> interleaves it with standard error as the two pipes happen
    /// to be read, so a line on one cannot be placed against a line on the other.
    /// </summary>
    public string StandardOutput
    {
        get
        {
            lock (_output)
            {
                return _standardOutput.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public int Id => _process.Id;

    /// <summary>
    /// Starts the runner with <paramref name="args"/>: the native executable at <paramref name="executable"/>
    /// (<see cref="NativeRunner"/>), the build's <c>runner.dll</c> on the JIT for <see cref="Jit"/>, and
    /// <see cref="DefaultExecutable"/> when the test names none.
    /// </summary>
    public static RunnerProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, string? executable = null)
    {
        executable ??= DefaultExecutable;
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (executable == Jit)
        {
            start.ArgumentList.Add(Dll);
        }
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // Only what the test sets: no settings, and no trace exporter, from the shell that runs the tests.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("RUNNER_", StringComparison.Ordinal) || k.StartsWith("OTEL_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }
        // Runners started side by side (test classes run in parallel) must not share the default HTTP port.
        start.Environment["RUNNER_HTTP_URLS"] = $"http://127.0.0.1:{NatsServerFixture.FreePort()}";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start runner");
        var runner = new RunnerProcess(process);
        process.OutputDataReceived += (_, e) => runner.Append(e.Data, standardOutput: true);
        process.ErrorDataReceived += (_, e) => runner.Append(e.Data, standardOutput: false);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return runner;
    }

    private void Append(string? line, bool standardOutput)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
            if (standardOutput)
            {
                _standardOutput.AppendLine(line);
            }
        }
    }

    public async Task<int> WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        return _process.ExitCode;
    }

    /// <summary>SIGTERM, as Docker and Swarm stop a container: the runner drains and exits.</summary>
    public Task TerminateAsync(CancellationToken cancellationToken) => SignalAsync("TERM", cancellationToken);

    /// <summary>SIGSTOP: the process freezes mid-flight, as in a long GC pause or a stalled VM, until <see cref="ContinueAsync"/>.</summary>
    public Task PauseAsync(CancellationToken cancellationToken) => SignalAsync("STOP", cancellationToken);

    /// <summary>SIGCONT: a paused process runs on from where it stood, unaware of the time it lost.</summary>
    public Task ContinueAsync(CancellationToken cancellationToken) => SignalAsync("CONT", cancellationToken);

    private async Task SignalAsync(string signal, CancellationToken cancellationToken)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("could not run kill");
        await kill.WaitForExitAsync(cancellationToken);
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {_process.Id} exited {kill.ExitCode}");
        }
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a power cut for this process.</summary>
    public async Task KillAsync(CancellationToken cancellationToken)
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync(cancellationToken);
    }

    /// <summary>SIGKILL to the runner alone, not its children: what happens to them is then the runner's doing.</summary>
    public async Task KillAloneAsync(CancellationToken cancellationToken)
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
        }
        await _process.WaitForExitAsync(cancellationToken);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
    }
}
