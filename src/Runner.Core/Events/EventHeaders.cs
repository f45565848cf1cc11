namespace Runner.Core.Events;

/// <summary>Header names carried end to end, and the ones Runner adds on its internal inbox.</summary>
internal static class EventHeaders
{
    public const string TenantId = "tenant-id";
    public const string CorrelationId = "correlation-id";
    public const string CausationId = "causation-id";
    public const string TraceParent = "traceparent";
    public const string TraceState = "tracestate";
    public const string MsgId = "Nats-Msg-Id";

    /// <summary>CloudEvents binary mode: every attribute is a <c>ce-</c> header.</summary>
    public const string CloudEventPrefix = "ce-";
    public const string ContentType = "content-type";

    public const string Saga = "runner-saga";
    public const string Key = "runner-key";
    public const string OriginStream = "runner-origin-stream";
    public const string OriginSequence = "runner-origin-seq";
    public const string OriginSubject = "runner-origin-subject";
    public const string OriginTime = "runner-origin-time";
    public const string Partition = "runner-partition";

    /// <summary>Percent-encodes a value for a header (NATS header values are ASCII on the wire).</summary>
    public static string Encode(string value) => Uri.EscapeDataString(value);

    public static string Decode(string value) => Uri.UnescapeDataString(value);

    /// <summary>Headers that are Runner's own plumbing and never shown to scripts as event headers.</summary>
    public static bool IsInternal(string name) =>
        name.StartsWith("runner-", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("Nats-", StringComparison.OrdinalIgnoreCase);
}
