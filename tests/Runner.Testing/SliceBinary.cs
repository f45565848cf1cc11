using System.Diagnostics;

namespace Runner.Testing;

/// <summary>
/// The NativeAOT <c>runner-slice</c> that slice sandboxes run: <c>RUNNER_TEST_SLICE_BIN</c> when set
/// (the test script publishes it once for every suite), else published here into the repository's
/// <c>artifacts/runner-slice</c>. A publish that fails fails the test that needed it.
/// </summary>
public static class SliceBinary
{
    private static readonly Lazy<Task<string>> s_path = new(LocateAsync);

    public static Task<string> PathAsync() => s_path.Value;

    private static async Task<string> LocateAsync()
    {
        if (Environment.GetEnvironmentVariable("RUNNER_TEST_SLICE_BIN") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"RUNNER_TEST_SLICE_BIN points at {configured}, which does not exist");
        }
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Runner.slnx")))
        {
            root = root.Parent;
        }
        if (root is null)
        {
            throw new InvalidOperationException("cannot find the repository root (Runner.slnx) to publish runner-slice; set RUNNER_TEST_SLICE_BIN");
        }
        var output = Path.Combine(root.FullName, "artifacts", "runner-slice");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = root.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "publish", "src/Runner.Slice", "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo", "-v", "quiet" })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        var binary = Path.Combine(output, "runner-slice");
        if (process.ExitCode != 0 || !File.Exists(binary))
        {
            throw new InvalidOperationException($"publishing runner-slice with NativeAOT failed ({process.ExitCode}): {await stdout}{await stderr}");
        }
        return binary;
    }
}
