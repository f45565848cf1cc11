using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Runner.Bench;

/// <summary>
/// Diagnostic (--jit-log): counts methods the JIT compiles while recording, by namespace and name,
/// from the runtime's own event source. Shows what keeps the tiered compiler busy under load.
/// </summary>
internal sealed class JitLog : EventListener
{
    private const EventKeywords JitKeyword = (EventKeywords)0x10;
    private readonly ConcurrentDictionary<string, int> _methods = new(StringComparer.Ordinal);
    private volatile bool _recording;

    public void Start()
    {
        _methods.Clear();
        _recording = true;
    }

    public List<KeyValuePair<string, int>> Stop()
    {
        _recording = false;
        return [.. _methods.OrderByDescending(m => m.Value)];
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, JitKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!_recording || eventData.EventName is null || !eventData.EventName.StartsWith("MethodLoadVerbose", StringComparison.Ordinal) || eventData.PayloadNames is null)
        {
            return;
        }
        string? ns = null;
        string? name = null;
        object? tier = null;
        object? flags = null;
        for (var i = 0; i < eventData.PayloadNames.Count; i++)
        {
            switch (eventData.PayloadNames[i])
            {
                case "MethodNamespace":
                    ns = eventData.Payload?[i] as string;
                    break;
                case "MethodName":
                    name = eventData.Payload?[i] as string;
                    break;
                case "OptimizationTier":
                    tier = eventData.Payload?[i];
                    break;
                case "MethodFlags":
                    flags = eventData.Payload?[i];
                    break;
                default:
                    break;
            }
        }
        var key = $"{Shorten(ns)}::{name} [tier {tier} flags {flags}]";
        _methods.AddOrUpdate(key, 1, (_, n) => n + 1);
    }

    private static string Shorten(string? ns) => ns is null ? "?" : ns.Length > 110 ? ns[..110] : ns;
}
