using System.Diagnostics;

namespace Runner.Testing;

/// <summary>
/// The <c>runner</c> executable compiled ahead of time (NativeAOT), as <c>-p:PublishAot=true</c> publishes it:
/// <c>RUNNER_TEST_NATIVE_RUNNER</c> when set (the test script publishes it once for every suite), else
/// published here into the repository's <c>artifacts/runner-native</c>. A publish that fails, or that warns
/// about Runner's own code (reflection the compiler cannot see through: it fails at run time, not here),
/// fails the test that needed it.
/// </summary>
public static class NativeRunner
{
    private static readonly Lazy<Task<string>> s_path = new(LocateAsync);

    public static Task<string> PathAsync() => s_path.Value;

    /// <summary>
    /// The publish's warnings about what it cannot compile ahead of time, but those inside Jint: its CLR interop,
    /// which the script sandbox turns off, is the only code they name.
    /// </summary>
    public static IReadOnlyList<string> RunnerWarnings(string publishOutput) =>
        publishOutput.Split('\n')
            .Where(l => l.Contains("warning IL", StringComparison.Ordinal) && !l.Contains("Jint", StringComparison.Ordinal))
            .Select(l => l.Trim())
            .Distinct(StringComparer.Ordinal)
            .ToList();

    private static async Task<string> LocateAsync()
    {
        if (Environment.GetEnvironmentVariable("RUNNER_TEST_NATIVE_RUNNER") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"RUNNER_TEST_NATIVE_RUNNER points at {configured}, which does not exist");
        }
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Runner.slnx")))
        {
            root = root.Parent;
        }
        if (root is null)
        {
            throw new InvalidOperationException("cannot find the repository root (Runner.slnx) to publish the native runner; set RUNNER_TEST_NATIVE_RUNNER");
        }
        var output = Path.Combine(root.FullName, "artifacts", "runner-native");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = root.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "publish", "src/Runner.Host", "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", output, "-nologo" })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        var log = await stdout + await stderr;
        var binary = Path.Combine(output, "runner");
        if (process.ExitCode != 0 || !File.Exists(binary))
        {
            throw new InvalidOperationException($"publishing the runner with NativeAOT failed ({process.ExitCode}): {log}");
        }
        if (RunnerWarnings(log) is { Count: > 0 } warnings)
        {
            throw new InvalidOperationException($"publishing the runner with NativeAOT warned about Runner's code:\n{string.Join('\n', warnings)}");
        }
        return binary;
    }
}
