using System.Diagnostics;

namespace Runner.Testing;

/// <summary>
/// A program the tests run as its published, native executable: the path in an environment variable when set
/// (the test script publishes it once for every suite), else what the test script's own function for it prints
/// (<c>scripts/prereqs.sh</c>: it publishes into the repository's <c>artifacts</c> when stale, and refuses a
/// publish that warns about Runner's code). A publish that fails fails the test that needed it.
/// </summary>
internal static class PublishedBinary
{
    public static async Task<string> LocateAsync(string variable, string function)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"{variable} points at {configured}, which does not exist");
        }
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Runner.slnx")))
        {
            root = root.Parent;
        }
        if (root is null)
        {
            throw new InvalidOperationException($"cannot find the repository root (Runner.slnx) to run {function}; set {variable}");
        }
        var start = new ProcessStartInfo("bash") { WorkingDirectory = root.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"source scripts/prereqs.sh && {function}");
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        var path = (await stdout).Trim();
        if (process.ExitCode != 0 || !File.Exists(path))
        {
            throw new InvalidOperationException($"{function} (scripts/prereqs.sh) failed ({process.ExitCode}): {path}{await stderr}");
        }
        return path;
    }
}
