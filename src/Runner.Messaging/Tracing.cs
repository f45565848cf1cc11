using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;

namespace Runner.Messaging;

/// <summary>
/// Spans that join across processes through the W3C <c>traceparent</c> every Runner message
/// carries: each stage starts its span as a child of the message's traceparent and puts its own
/// span's id on what it publishes, so one trace runs router → saga → relay → effect.
/// </summary>
internal static class Tracing
{
    public const string MeterName = "Runner.Messaging";

    public static readonly Meter Meter = new(MeterName);

    /// <summary>Counter: messages delivered more than once (the server redelivered them), by consumer.</summary>
    public static readonly Counter<long> Redeliveries = Meter.CreateCounter<long>(
        "runner.redeliveries", unit: "{message}", description: "Messages the server delivered again after a missing ack");

    /// <summary>Counter: consumers found delivering nothing while their stream held more, and re-attached, by consumer.</summary>
    public static readonly Counter<long> Stalls = Meter.CreateCounter<long>(
        "runner.consumer.stalls", unit: "{stall}", description: "Consumers re-attached after delivering nothing while their stream held messages for them");

    /// <summary>
    /// Starts a span named <c>{verb} {name}</c> (<see cref="SpanNames"/>) whose parent is <paramref name="traceParent"/> (a new
    /// trace when it is absent or malformed). Null when nobody listens, which costs nothing: not
    /// even the span's name is made then.
    /// </summary>
    public static Activity? Start(ActivitySource source, SpanNames verb, string name, ActivityKind kind, string? traceParent)
    {
        if (!source.HasListeners())
        {
            // No span, and none of whatever started this loop either (an admin request that
            // resumed or reloaded it): log lines then carry the message's own trace id.
            if (Activity.Current is not null)
            {
                Activity.Current = null;
            }
            return null;
        }
        if (!ActivityContext.TryParse(traceParent, null, out var parent))
        {
            // No parent of its own: a new trace, not a child of whatever span is current on this
            // flow (a loop restarted from an HTTP request would otherwise hang under that request).
            // Loops run in their own execution context, so clearing it here affects only them.
            Activity.Current = null;
            parent = default;
        }
        return source.StartActivity(verb.Of(name), kind, parent);
    }

    /// <summary>
    /// <see cref="Start(ActivitySource, SpanNames, string, ActivityKind, string?)"/> as the child of the
    /// message's <c>traceparent</c> header, read only when a span is made.
    /// </summary>
    public static Activity? Start(ActivitySource source, SpanNames verb, string name, ActivityKind kind, IReadOnlyDictionary<string, string> headers) =>
        Start(source, verb, name, kind, source.HasListeners() ? headers.GetValueOrDefault(Core.Events.EventHeaders.TraceParent) : null);

    /// <summary>What to send on: the span's id when there is a span, the inbound traceparent otherwise.</summary>
    public static string? TraceParent(Activity? activity, string? inbound) =>
        activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : inbound;

    /// <summary>
    /// What a message entering Runner sends on: as <see cref="TraceParent"/>, and where there is
    /// no span and the inbound traceparent is missing or unreadable, a new trace's (sampled, so a
    /// later hop that records spans records its own). Every hop after the router then has a trace
    /// id for its log lines, whether or not spans are recorded.
    /// </summary>
    /// <param name="started">Whether the inbound traceparent was missing or unreadable (its <c>tracestate</c>, if any, then belongs to no trace sent on).</param>
    public static string StartingTraceParent(Activity? activity, string? inbound, out bool started)
    {
        started = !IsTraceParent(inbound);
        return activity is { IdFormat: ActivityIdFormat.W3C, Id: { } id } ? id : started ? NewTraceParent() : inbound!;
    }

    /// <summary>
    /// A W3C traceparent of a new trace: <c>00-{trace id}-{span id}-01</c>, random as
    /// <see cref="ActivityTraceId.CreateRandom"/>'s, written straight into the one string (an
    /// <see cref="ActivityTraceId"/> or <see cref="ActivitySpanId"/> makes its own text as well).
    /// </summary>
    public static string NewTraceParent() => string.Create(TraceParentLength, 0, static (text, _) =>
    {
        Span<byte> id = stackalloc byte[16 + 8];
        Random.Shared.NextBytes(id);
        // An id of all zeros is invalid: the last byte makes it nonzero.
        id[15] |= (byte)(id[..16].ContainsAnyExcept((byte)0) ? 0 : 1);
        id[23] |= (byte)(id[16..].ContainsAnyExcept((byte)0) ? 0 : 1);
        "00-".CopyTo(text);
        Convert.TryToHexStringLower(id[..16], text[3..35], out _);
        text[35] = '-';
        Convert.TryToHexStringLower(id[16..], text[36..52], out _);
        "-01".CopyTo(text[52..]);
    });

    /// <summary>
    /// Whether the text is a W3C traceparent: <c>{version}-{trace id}-{parent id}-{flags}</c> in
    /// lower-case hex, ids not all zeros, version not <c>ff</c>; version <c>00</c> exactly so long,
    /// a later version perhaps with more fields after a dash.
    /// </summary>
    public static bool IsTraceParent([NotNullWhen(true)] string? traceParent)
    {
        if (traceParent is not { Length: >= TraceParentLength } || traceParent[2] != '-' || traceParent[35] != '-' || traceParent[52] != '-')
        {
            return false;
        }
        var text = traceParent.AsSpan();
        var version = text[..2];
        var traceId = text[3..35];
        var parentId = text[36..52];
        return !version.ContainsAnyExcept(s_lowerHex) && !text[53..55].ContainsAnyExcept(s_lowerHex)
            && !traceId.ContainsAnyExcept(s_lowerHex) && !parentId.ContainsAnyExcept(s_lowerHex)
            && traceId.ContainsAnyExcept('0') && parentId.ContainsAnyExcept('0')
            && !version.SequenceEqual("ff")
            && (text.Length == TraceParentLength || (!version.SequenceEqual("00") && text[TraceParentLength] == '-'));
    }

    /// <summary>The trace id of a <see cref="IsTraceParent">W3C traceparent</see>, or null.</summary>
    public static string? TraceIdOf(string? traceParent) => IsTraceParent(traceParent) ? traceParent.Substring(3, 32) : null;

    private static readonly System.Buffers.SearchValues<char> s_lowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    private const int TraceParentLength = 55;

    public static void Fail(Activity? activity, string reason) => activity?.SetStatus(ActivityStatusCode.Error, reason);
}

/// <summary>
/// The names <c>{verb} {name}</c> of one kind of span, each made once: the names are saga, effect and
/// stream names, a small set, and a span per message made its name per message. Past
/// <see cref="MaxNames"/> names are made each time rather than kept.
/// </summary>
internal sealed class SpanNames(string verb)
{
    public const int MaxNames = 1_024;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);

    /// <summary>How many are kept, or being added: counted here, as the table's own count takes every one of its locks.</summary>
    private int _size;

    /// <summary>Names kept so far (at most <see cref="MaxNames"/>).</summary>
    public int Kept => Volatile.Read(ref _size);

    public string Of(string name)
    {
        if (_names.TryGetValue(name, out var known))
        {
            return known;
        }
        var made = verb + " " + name;
        // A place reserved before the add, and given back if the add does not happen: never more than the cap kept.
        if (Interlocked.Increment(ref _size) > MaxNames)
        {
            Interlocked.Decrement(ref _size);
            return made;
        }
        if (_names.TryAdd(name, made))
        {
            return made;
        }
        Interlocked.Decrement(ref _size);
        return _names.GetValueOrDefault(name, made);
    }
}
