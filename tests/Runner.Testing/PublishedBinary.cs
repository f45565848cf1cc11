using System.Diagnostics;

namespace Runner.Testing;

/// <summary>
/// A program the tests run as its published, native executable: the path in an environment variable when set
/// (the test script publishes it once for every suite), else published here into the repository's
/// <c>artifacts</c>. A publish that fails, or whose output <c>refuse</c> objects to, fails the test that needed it.
/// </summary>
internal static class PublishedBinary
{
    public static async Task<string> LocateAsync(string variable, string project, string artifact, string binary, IEnumerable<string> publishArgs, Func<string, string?>? refuse = null)
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
            throw new InvalidOperationException($"cannot find the repository root (Runner.slnx) to publish {binary}; set {variable}");
        }
        var output = Path.Combine(root.FullName, "artifacts", artifact);
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = root.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "publish", project, "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo" }.Concat(publishArgs))
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        var log = await stdout + await stderr;
        var path = Path.Combine(output, binary);
        if (process.ExitCode != 0 || !File.Exists(path))
        {
            throw new InvalidOperationException($"publishing {binary} with NativeAOT failed ({process.ExitCode}): {log}");
        }
        if (refuse?.Invoke(log) is { } why)
        {
            throw new InvalidOperationException($"publishing {binary} with NativeAOT: {why}");
        }
        return path;
    }
}
