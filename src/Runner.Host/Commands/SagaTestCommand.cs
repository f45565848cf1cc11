using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Testing;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner saga test PATH [--manifests DIR]</c>: runs golden files through their sagas' scripts
/// in the same sandbox the worker uses, offline (no NATS). Exit 0 when every file passes, 1 when
/// any fails, 2 on a usage error, an unreadable or invalid golden file, or manifests that do not load.
/// </summary>
internal static class SagaTestCommand
{
    public const string Usage = "usage: runner saga test PATH [--manifests DIR]   (PATH: a golden file, or a directory of *.yaml, *.yml, *.jsonl)";

    public static int Run(string[] args)
    {
        string? path = null, manifestsFlag = null;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--manifests" && i + 1 < args.Length)
            {
                manifestsFlag = args[++i];
            }
            else if (path is null && !args[i].StartsWith("--", StringComparison.Ordinal))
            {
                path = args[i];
            }
            else
            {
                path = null;
                break;
            }
        }
        if (path is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var files = GoldenFiles(path);
        if (files is null)
        {
            return 2;
        }

        var streams = SettingsFromEnvironment.Load()?.JetStream.Streams ?? new StreamNames();
        var defaultManifests = manifestsFlag
            ?? (Environment.GetEnvironmentVariable("RUNNER_MANIFESTS") is { Length: > 0 } env ? env : "manifests");
        var loaded = new Dictionary<string, ManifestLoader.Result>(StringComparer.Ordinal);
        int passed = 0, failed = 0, invalid = 0;
        foreach (var file in files)
        {
            switch (RunFile(file, streams, defaultManifests, loaded))
            {
                case 0: passed++; break;
                case 1: failed++; break;
                default: invalid++; break;
            }
        }
        Console.WriteLine($"{files.Count} file(s): {passed} passed, {failed} failed" + (invalid > 0 ? $", {invalid} not run (invalid file or manifests)" : ""));
        return invalid > 0 ? 2 : failed > 0 ? 1 : 0;
    }

    /// <summary>The file itself, or every golden file under the directory in path order; null (reported) when there is none.</summary>
    private static List<string>? GoldenFiles(string path)
    {
        if (File.Exists(path))
        {
            return [path];
        }
        if (!Directory.Exists(path))
        {
            Console.Error.WriteLine($"runner: {path}: no such file or directory");
            return null;
        }
        var files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Where(GoldenFileReader.IsGoldenFile)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
        {
            Console.Error.WriteLine($"runner: {path}: no golden files (*.yaml, *.yml, *.jsonl)");
            return null;
        }
        return files;
    }

    /// <summary>0 passed, 1 failed, 2 not run; prints the file's line and its differences or errors.</summary>
    private static int RunFile(string path, StreamNames streams, string defaultManifests, Dictionary<string, ManifestLoader.Result> loaded)
    {
        var read = GoldenFileReader.Read(path, streams);
        if (read.File is not { } golden)
        {
            return NotRun(path, read.Errors);
        }
        var directory = golden.Manifests is { } named
            ? Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, named))
            : Path.GetFullPath(defaultManifests);
        if (!loaded.TryGetValue(directory, out var manifests))
        {
            manifests = ManifestLoader.Load(directory, streams);
            loaded[directory] = manifests;
        }
        if (!manifests.Succeeded)
        {
            return NotRun(path, [$"the manifests at {directory} do not load ({manifests.Errors.Count} error(s)):", .. manifests.Errors.Select(e => "  " + e)]);
        }
        if (manifests.Set!.Saga(golden.Saga) is not { } saga)
        {
            return NotRun(path, [$"saga '{golden.Saga}' is not in the manifests at {directory} (they have: {string.Join(", ", manifests.Set.Sagas.Select(s => s.Name))})"]);
        }

        var results = GoldenRunner.Run(golden, manifests.Set, saga);
        if (results.All(r => r.Passed))
        {
            Console.WriteLine($"ok   {path}  ({results.Count} step{(results.Count == 1 ? "" : "s")})");
            return 0;
        }
        Console.WriteLine($"FAIL {path}");
        foreach (var result in results)
        {
            foreach (var difference in result.Differences)
            {
                Console.WriteLine($"  {result.Title}: {difference}");
            }
        }
        return 1;
    }

    private static int NotRun(string path, IReadOnlyList<string> errors)
    {
        Console.WriteLine($"ERR  {path}");
        foreach (var error in errors)
        {
            Console.WriteLine($"  {error}");
        }
        return 2;
    }
}
