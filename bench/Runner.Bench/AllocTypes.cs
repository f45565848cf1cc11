using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Runner.Bench;

/// <summary>
/// Samples allocations (the runtime's AllocationTick, one event per ~100 KB allocated) by type, and
/// counts the collections that ran meanwhile by generation and reason (why a GC is a gen1).
/// </summary>
internal sealed class AllocTypes : EventListener
{
    public readonly ConcurrentDictionary<string, long> Bytes = new();
    public readonly ConcurrentDictionary<string, long> Collections = new();
    public volatile bool On;

    /// <summary>A listener already counting when <c>BENCH_ALLOC_TYPES=1</c> asks for one; otherwise null.</summary>
    public static AllocTypes? StartIfAsked() =>
        Environment.GetEnvironmentVariable("BENCH_ALLOC_TYPES") == "1" ? new AllocTypes { On = true } : null;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (On && e.EventName is { } started && started.StartsWith("GCStart", StringComparison.Ordinal) && e.Payload is not null)
        {
            var depth = e.PayloadNames!.IndexOf("Depth") is var d and >= 0 ? e.Payload[d] : "?";
            var reason = e.PayloadNames.IndexOf("Reason") is var r and >= 0 ? e.Payload[r] : "?";
            Collections.AddOrUpdate($"gen{depth} reason {reason}", 1, (_, v) => v + 1);
            return;
        }
        if (!On || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null)
        {
            return;
        }
        var name = e.PayloadNames!.IndexOf("TypeName") is var i and >= 0 ? e.Payload[i] as string ?? "?" : "?";
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var j and >= 0 ? Convert.ToInt64(e.Payload[j]) : 100_000;
        Bytes.AddOrUpdate(name, amount, (_, v) => v + amount);
    }

    public void Print(TextWriter output)
    {
        var total = Bytes.Values.Sum();
        foreach (var (name, bytes) in Bytes.OrderByDescending(p => p.Value).Take(40))
        {
            output.WriteLine($"    {100.0 * bytes / total,5:F1} %  {name}");
        }
        // Reasons as the runtime numbers them: 0 small allocation, 4 large allocation, 5 out of space (small heap), 8 internal.
        output.WriteLine($"    collections: {string.Join(", ", Collections.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} ×{p.Value}"))}");
    }
}
