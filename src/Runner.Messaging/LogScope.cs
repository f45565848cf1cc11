using System.Collections;
using Microsoft.Extensions.Logging;

namespace Runner.Messaging;

/// <summary>
/// The identity of the message being handled, as a log scope: every line logged while it is open
/// carries the tenant, saga and correlation id (and command id) as fields (invariant 7). The JSON
/// console writes them with each line, next to the span's trace id.
/// </summary>
internal sealed class LogScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly string? _tenant;
    private readonly string? _saga;
    private readonly string? _correlationId;
    private readonly string? _commandId;

    private LogScope(string? tenant, string? saga, string? correlationId, string? commandId)
    {
        _tenant = tenant;
        _saga = saga;
        _correlationId = correlationId;
        _commandId = commandId;
    }

    /// <summary>Opens the scope: four fields in one small object (an array of pairs was twice its size, made per message).</summary>
    public static IDisposable? For(ILogger logger, string? tenant, string? saga, string? correlationId, string? commandId = null) =>
        logger.BeginScope(new LogScope(tenant, saga, correlationId, commandId));

    public int Count => 4;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("tenant", _tenant),
        1 => new("saga", _saga),
        2 => new("correlation_id", _correlationId),
        3 => new("command_id", _commandId),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < Count; i++)
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
