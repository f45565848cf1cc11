using System.Globalization;
using System.Reflection.PortableExecutable;
using System.Runtime;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Runner.Host.Operations;

/// <summary>
/// The .NET runtime this process runs on, as it configured itself: the shipped
/// <c>runner.runtimeconfig.json</c> with the environment's <c>DOTNET_*</c> overrides and the
/// container's limits applied (<see cref="GC.GetConfigurationVariables"/> reports the values in use).
/// </summary>
internal static class RuntimeReport
{
    public static JsonObject Describe()
    {
        var gc = GC.GetConfigurationVariables();
        return new JsonObject
        {
            ["dotnet"] = Environment.Version.ToString(),
            ["processors"] = Environment.ProcessorCount,
            ["precompiled"] = Precompiled,
            ["native_aot"] = NativeAot,
            ["gc"] = new JsonObject
            {
                ["server"] = GCSettings.IsServerGC,
                ["concurrent"] = JsonNodes.Value(gc.GetValueOrDefault("ConcurrentGC")),
                ["heaps"] = Heaps(gc),
                ["dynamic_adaptation"] = Datas(gc),
                ["heap_hard_limit_bytes"] = JsonNodes.Value(gc.GetValueOrDefault("GCHeapHardLimit")),
                ["gen0_max_budget_bytes"] = JsonNodes.Value(gc.GetValueOrDefault("GCGen0MaxBudget")),
                // Collections so far, each counted in every generation up to the one it collected; the start-up
                // compaction is the first gen2 one.
                ["collections"] = new JsonObject
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
            GCSettings.IsServerGC ? "server" : "workstation", Heaps(gc), Datas(gc) != 0 ? "on" : "off",
            NativeAot ? "compiled ahead of time (NativeAOT)" : Precompiled ? "precompiled (ReadyToRun)" : "compiled on first call");
    }

    /// <summary>Whether this process is a native executable (<c>PublishAot</c>): no JIT, nothing compiled while it runs.</summary>
    public static bool NativeAot => !RuntimeFeature.IsDynamicCodeSupported;

    /// <summary>
    /// Whether the runner's own code carries a ReadyToRun image, as a published runner's does (the image;
    /// bench/README.md "Precompiled images"), or is compiled on its first call, as a build's is: the second
    /// starts about 2 s later and applies its first events later.
    /// </summary>
    public static bool Precompiled => NativeAot || s_precompiled.Value;

    // Beside the executable, by name: a native executable has no assembly files (and Assembly.Location is empty).
    private static readonly Lazy<bool> s_precompiled = new(() =>
        HasReadyToRunImage(Path.Combine(AppContext.BaseDirectory, typeof(RuntimeReport).Assembly.GetName().Name + ".dll")));

    /// <summary>Whether the assembly at <paramref name="path"/> holds precompiled code (its CLI header names a ReadyToRun header).</summary>
    internal static bool HasReadyToRunImage(string path)
    {
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
        {
            return false;
        }
        using var stream = File.OpenRead(path);
        using var reader = new PEReader(stream);
        return reader.PEHeaders.CorHeader is { ManagedNativeHeaderDirectory.Size: > 0 };
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
