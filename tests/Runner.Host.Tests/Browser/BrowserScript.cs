using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Xunit;

namespace Runner.Host.Tests.Browser;

/// <summary>
/// A Node script of this folder, run with playwright-core driving Debian's Chromium: its JSON event
/// lines as they come, then its exit code, output and last JSON line. What it needs (node,
/// <c>/usr/bin/chromium</c>, <c>node_modules/playwright-core</c>) is checked first, and a missing
/// piece fails the test saying what installs it (<c>scripts/prereqs.sh</c>).
/// </summary>
internal static class BrowserScript
{
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>This folder in the source tree, where <c>npm ci</c> put <c>node_modules</c>.</summary>
    public static string Folder { get; } = FindFolder();

    public static void RequirePrerequisites()
    {
        if (!File.Exists(Chromium))
        {
            Assert.Fail($"Debian's chromium is not installed ({Chromium} is missing): scripts/prereqs.sh installs it (apt-get install chromium)");
        }
        if (!File.Exists(Path.Combine(Folder, "node_modules", "playwright-core", "package.json")))
        {
            Assert.Fail($"playwright-core is not installed in {Folder}: scripts/prereqs.sh installs it (npm ci there, with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1)");
        }
    }

    /// <summary>
    /// Runs <c>node {script}</c> in this folder with <paramref name="environment"/>; every stdout line that is a
    /// JSON object with an <c>event</c> goes to <paramref name="onEvent"/> as it is printed.
    /// </summary>
    public static async Task<(int ExitCode, string Output, JsonNode? Result)> RunAsync(
        string script, IReadOnlyDictionary<string, string> environment, Func<JsonNode, Task> onEvent, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(Folder, script));
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        }
        catch (Win32Exception ex)
        {
            Assert.Fail($"node (Node.js 20 or later) is not on PATH: scripts/prereqs.sh installs it ({ex.Message})");
            throw;
        }
        using (process)
        {
            var output = new StringBuilder();
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            JsonNode? last = null;
            try
            {
                while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
                {
                    output.AppendLine(line);
                    if (!line.StartsWith('{'))
                    {
                        continue;
                    }
                    var json = JsonNode.Parse(line);
                    if (json?["event"] is not null)
                    {
                        await onEvent(json);
                    }
                    else
                    {
                        last = json;
                    }
                }
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{script} did not finish in time; its output:\n{output}");
            }
            output.Append(await stderr);
            return (process.ExitCode, output.ToString(), last);
        }
    }

    private static string FindFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Runner.slnx")))
            {
                return Path.Combine(dir.FullName, "tests", "Runner.Host.Tests", "Browser");
            }
        }
        throw new InvalidOperationException("repository root (Runner.slnx) not found above " + AppContext.BaseDirectory);
    }
}
