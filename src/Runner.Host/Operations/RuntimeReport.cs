using System.Globalization;
using System.Runtime;
using Microsoft.Extensions.Logging;

namespace Runner.Host.Operations;

/// <summary>
/// The .NET runtime this process runs on, as it configured itself: the shipped
/// <c>runner.runtimeconfig.json</c> with the environment's <c>DOTNET_*</c> overrides and the
/// container's limits applied (<see cref="GC.GetConfigurationVariables"/> reports the values in use).
/// </summary>
internal static class RuntimeReport
{
    public static Dictionary<string, object?> Describe()
    {
        var gc = GC.GetConfigurationVariables();
        return new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["dotnet"] = Environment.Version.ToString(),
            ["processors"] = Environment.ProcessorCount,
            ["gc"] = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["server"] = GCSettings.IsServerGC,
                ["concurrent"] = gc.GetValueOrDefault("ConcurrentGC"),
                ["heaps"] = Heaps(gc),
                ["dynamic_adaptation"] = Datas(gc),
                ["heap_hard_limit_bytes"] = gc.GetValueOrDefault("GCHeapHardLimit"),
                ["gen0_max_budget_bytes"] = gc.GetValueOrDefault("GCGen0MaxBudget"),
                // Collections so far, each counted in every generation up to the one it collected; the start-up
                // compaction is the first gen2 one.
                ["collections"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["gen0"] = GC.CollectionCount(0),
                    ["gen1"] = GC.CollectionCount(1),
                    ["gen2"] = GC.CollectionCount(2),
                },
            },
        };
    }

    /// <summary>One line at start: what an operator checks first when pauses or memory look wrong.</summary>
    public static void Log(ILogger logger)
    {
        var gc = GC.GetConfigurationVariables();
        HostLog.Runtime(logger, Environment.Version.ToString(), Environment.ProcessorCount,
            GCSettings.IsServerGC ? "server" : "workstation", Heaps(gc), Datas(gc) != 0 ? "on" : "off");
    }

    /// <summary>The server GC's heaps (with DATAS, the most it may use); 1 for workstation GC.</summary>
    private static int Heaps(IReadOnlyDictionary<string, object> gc) =>
        gc.TryGetValue("HeapCount", out var heaps) ? Convert.ToInt32(heaps, CultureInfo.InvariantCulture) : 1;

    /// <summary>
    /// 1 while DATAS sizes the server GC's heaps and budgets; 0 when it is off (a heap count set) or the GC is
    /// workstation's, which the runtime reports with the mode still 1 although DATAS only applies to server GC.
    /// </summary>
    private static long Datas(IReadOnlyDictionary<string, object> gc) =>
        GCSettings.IsServerGC && gc.TryGetValue("GCDynamicAdaptationMode", out var mode) ? Convert.ToInt64(mode, CultureInfo.InvariantCulture) : 0;
}
