using System.Collections;
using Runner.Host.Settings;

namespace Runner.Host.Commands;

internal static class SettingsFromEnvironment
{
    /// <summary>Loads settings or prints every problem and returns null.</summary>
    public static RunnerSettings? Load()
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            env[(string)entry.Key] = entry.Value as string;
        }
        var (settings, errors) = SettingsLoader.Load(env);
        if (errors.Count == 0)
        {
            return settings;
        }
        Console.Error.WriteLine($"runner: {errors.Count} configuration problem(s):");
        foreach (var error in errors)
        {
            Console.Error.WriteLine("  " + error);
        }
        return null;
    }
}
