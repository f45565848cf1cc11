using Runner.Messaging;
using Runner.Sagas.Manifests;

namespace Runner.Host.Commands;

internal static class ValidateCommand
{
    public static int Run(string directory)
    {
        var streams = SettingsFromEnvironment.Load()?.JetStream.Streams ?? new StreamNames();
        var result = ManifestLoader.Load(directory, streams);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
            {
                Console.Error.WriteLine(error);
            }
            Console.Error.WriteLine($"{result.Errors.Count} error(s)");
            return 1;
        }
        var set = result.Set!;
        Console.WriteLine($"ok: {set.Sagas.Count} sagas, {set.Effects.Count} effects, version {set.Hash[..12]}");
        foreach (var saga in set.Sagas)
        {
            Console.WriteLine($"  saga {saga.Name}: {saga.Manifest.Triggers.Count} triggers, script {Path.GetFileName(saga.Script.File)} ({saga.Script.Hash[..12]})");
        }
        foreach (var effect in set.Effects)
        {
            var target = effect.Http is { } http ? $" {http.Method} {http.Url}"
                : effect.Gateway is { } gateway ? $" POST {gateway.Url}"
                : effect.Publish is { } publish ? $" to {publish.Subject}"
                : effect.Slice is { } slice ? $" paths {string.Join(", ", slice.ReadOnlyRoots.Concat(slice.ReadWriteRoots).Distinct(StringComparer.Ordinal))}"
                : string.Empty;
            Console.WriteLine($"  effect {effect.Name}: provider {effect.Provider}{target}{(effect.Pool is null ? "" : ", pool " + effect.Pool)}, "
                + $"{effect.Retry.MaxAttempts} attempt(s), timeout {effect.TimeoutMs} ms, concurrency {effect.Concurrency}");
        }
        return 0;
    }
}
