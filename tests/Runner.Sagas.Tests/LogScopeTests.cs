using Xunit;
using Microsoft.Extensions.Logging;
using Runner.Messaging;

namespace Runner.Sagas.Tests;

/// <summary>The message identity scope as the JSON console reads it (pairs, in order) and as the plain console shows it.</summary>
public sealed class LogScopeTests
{
    [Fact]
    public void The_scope_is_its_four_fields_in_order_and_shows_the_ones_that_are_set()
    {
        var provider = new LoggerExternalScopeProvider();
        var logger = new ScopeLogger(provider);
        object? seen = null;

        using (LogScope.For(logger, "acme", "orders", "o-1"))
        {
            provider.ForEachScope((scope, _) => seen = scope, (object?)null);
        }

        var pairs = Assert.IsAssignableFrom<IReadOnlyList<KeyValuePair<string, object?>>>(seen);
        Assert.Equal(
            [new("tenant", "acme"), new("saga", "orders"), new("correlation_id", "o-1"), new KeyValuePair<string, object?>("command_id", null)],
            pairs.ToList());
        Assert.Equal(pairs.Count, pairs.Count());
        Assert.Equal("tenant:acme saga:orders correlation_id:o-1", seen!.ToString());
    }

    private sealed class ScopeLogger(IExternalScopeProvider scopes) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
        }
    }
}
