using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Runner.Bench;

/// <summary>Samples allocations (the runtime's AllocationTick, one event per ~100 KB allocated) by type.</summary>
internal sealed class AllocTypes : EventListener
{
    public readonly ConcurrentDictionary<string, long> Bytes = new();
    public volatile bool On;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
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
    }
}
