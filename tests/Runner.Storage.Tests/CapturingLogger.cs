using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Runner.Storage.Tests;

/// <summary>Keeps the structured fields of every storage log event, by event id.</summary>
internal sealed class CapturingLogger : ILogger<LmdbStore>
{
    public const int Opened = 1000;
    public const int MapGrown = 1001;

    private readonly ConcurrentQueue<(int EventId, Dictionary<string, object?> Fields)> _events = new();

    public IReadOnlyList<Dictionary<string, object?>> Events(int eventId) =>
        _events.Where(e => e.EventId == eventId).Select(e => e.Fields).ToList();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var fields = state is IReadOnlyList<KeyValuePair<string, object?>> list
            ? list.ToDictionary(f => f.Key, f => f.Value)
            : [];
        _events.Enqueue((eventId.Id, fields));
    }
}
