using System.Collections;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Runner.Messaging;

/// <summary>
/// The identity of the message being handled, as a log scope: every line logged while it is open
/// carries the tenant, saga and correlation id (and command id) as fields (invariant 7). The JSON
/// console writes them with each line, next to the span's trace id. Where no span is recorded (no
/// trace exporter is configured), the scope itself carries the message's trace id, under the same
/// name, read from its traceparent when a line is written.
/// </summary>
internal sealed class LogScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    /// <summary>The name the logger's own activity scope gives a span's trace id.</summary>
    public const string TraceIdName = "TraceId";

    private readonly string? _tenant;
    private readonly string? _saga;
    private readonly string? _correlationId;
    private readonly string? _commandId;
    private readonly string? _traceParent;
    private readonly IReadOnlyDictionary<string, string>? _headers;

    private LogScope(string? tenant, string? saga, string? correlationId, string? commandId, string? traceParent, IReadOnlyDictionary<string, string>? headers)
    {
        _tenant = tenant;
        _saga = saga;
        _correlationId = correlationId;
        _commandId = commandId;
        _traceParent = traceParent;
        _headers = headers;
    }

    /// <summary>Opens the scope: its fields in one small object (an array of pairs was twice its size, made per message).</summary>
    public static IDisposable? For(ILogger logger, string? tenant, string? saga, string? correlationId, string? commandId = null, string? traceParent = null) =>
        logger.BeginScope(new LogScope(tenant, saga, correlationId, commandId, traceParent, null));

    /// <summary>
    /// Opens the scope of a message whose <c>traceparent</c> is read from <paramref name="headers"/>
    /// only when a line is written (most messages log nothing); the headers must outlive the scope.
    /// </summary>
    public static IDisposable? For(ILogger logger, string? tenant, string? saga, string? correlationId, IReadOnlyDictionary<string, string> headers) =>
        logger.BeginScope(new LogScope(tenant, saga, correlationId, null, null, headers));

    /// <summary>The four identity fields, and the trace id when no span (whose trace id the logger writes) is current.</summary>
    public int Count => TraceIdShown ? 5 : 4;

    private string? TraceParent => _traceParent ?? _headers?.GetValueOrDefault(Core.Events.EventHeaders.TraceParent);

    private bool TraceIdShown => Activity.Current is null && Tracing.IsTraceParent(TraceParent);

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("tenant", _tenant),
        1 => new("saga", _saga),
        2 => new("correlation_id", _correlationId),
        3 => new("command_id", _commandId),
        4 when TraceIdShown => new(TraceIdName, Tracing.TraceIdOf(TraceParent)),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        var count = Count;
        for (var i = 0; i < count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>How the plain console shows the scope: the fields that are set, as <c>name:value</c>.</summary>
    public override string ToString()
    {
        var text = new System.Text.StringBuilder();
        foreach (var (name, value) in this)
        {
            if (value is not null)
            {
                text.Append(text.Length == 0 ? string.Empty : " ").Append(name).Append(':').Append(value);
            }
        }
        return text.ToString();
    }
}
