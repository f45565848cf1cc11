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

    [Fact]
    public void Without_a_span_the_scope_carries_the_trace_id_of_the_message_and_with_one_leaves_it_to_the_span()
    {
        const string TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        var provider = new LoggerExternalScopeProvider();
        var logger = new ScopeLogger(provider);
        IReadOnlyList<KeyValuePair<string, object?>> Pairs(string? traceParent)
        {
            object? seen = null;
            using (LogScope.For(logger, "acme", "orders", "o-1", "c-1", traceParent))
            {
                provider.ForEachScope((scope, _) => seen = scope, (object?)null);
            }
            return Assert.IsAssignableFrom<IReadOnlyList<KeyValuePair<string, object?>>>(seen);
        }

        System.Diagnostics.Activity.Current = null;
        var pairs = Pairs(TraceParent);
        Assert.Equal(5, pairs.Count);
        Assert.Equal(new KeyValuePair<string, object?>("TraceId", "0af7651916cd43dd8448eb211c80319c"), pairs[4]);
        Assert.Equal(pairs.ToList(), [.. pairs]);
        Assert.EndsWith(" TraceId:0af7651916cd43dd8448eb211c80319c", pairs.ToString());

        // A message's scope reads the traceparent from its headers, when a line is written.
        var headers = new Dictionary<string, string>(StringComparer.Ordinal) { ["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };
        object? fromHeaders = null;
        using (LogScope.For(logger, "acme", "orders", "o-1", headers))
        {
            headers["traceparent"] = TraceParent;
            provider.ForEachScope((scope, _) => fromHeaders = scope, (object?)null);
        }
        var headerPairs = Assert.IsAssignableFrom<IReadOnlyList<KeyValuePair<string, object?>>>(fromHeaders);
        Assert.Equal(
            [new("tenant", "acme"), new("saga", "orders"), new("correlation_id", "o-1"), new("command_id", null), new KeyValuePair<string, object?>("TraceId", "0af7651916cd43dd8448eb211c80319c")],
            headerPairs.ToList());

        // A later version's traceparent, with a field more: its trace id is where version 00 has it.
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", Pairs("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-later")[4].Value);

        // Not a traceparent: no trace id rather than a wrong one.
        Assert.Equal(4, Pairs("00-0af7651916cd43dd8448eb211c80319c").Count);
        Assert.Equal(4, Pairs("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x").Count);
        Assert.Equal(4, Pairs(null).Count);

        // A span is current: the logger writes its trace id (and span id) itself, so the scope does not repeat it.
        using var span = new System.Diagnostics.Activity("test").Start();
        Assert.Equal(4, Pairs(TraceParent).Count);
    }

    [Fact]
    public void A_started_trace_is_a_sampled_W3C_traceparent_and_a_readable_inbound_one_is_kept()
    {
        System.Diagnostics.Activity.Current = null;
        var made = Tracing.NewTraceParent();
        Assert.True(System.Diagnostics.ActivityContext.TryParse(made, null, out var context), made);
        Assert.Equal(System.Diagnostics.ActivityTraceFlags.Recorded, context.TraceFlags);
        Assert.Equal(context.TraceId.ToHexString(), Tracing.TraceIdOf(made));
        Assert.NotEqual(made, Tracing.NewTraceParent());

        const string Inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        Assert.Equal(Inbound, Tracing.StartingTraceParent(null, Inbound, out var started));
        Assert.False(started);
        const string Later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later";
        Assert.Equal(Later, Tracing.StartingTraceParent(null, Later, out started));
        Assert.False(started);
        foreach (var unreadable in new[] { null, "00-bad", Inbound.ToUpperInvariant(), "ff" + Inbound[2..], Inbound + "-more",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01" })
        {
            var replaced = Tracing.StartingTraceParent(null, unreadable, out started);
            Assert.True(started, unreadable);
            Assert.True(System.Diagnostics.ActivityContext.TryParse(replaced, null, out _), replaced);
            Assert.Null(Tracing.TraceIdOf(unreadable));
        }
        using var span = new System.Diagnostics.Activity("test").SetIdFormat(System.Diagnostics.ActivityIdFormat.W3C).Start();
        Assert.Equal(span.Id, Tracing.StartingTraceParent(span, Inbound, out started));
        Assert.False(started);
    }

    [Fact]
    public void With_nobody_listening_no_span_is_made_and_none_that_started_the_loop_stays_current()
    {
        // A loop an admin request restarted runs in that request's context: its span must not stand in for the message's trace.
        using var source = new System.Diagnostics.ActivitySource("runner-test-unheard");
        const string TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        using (new System.Diagnostics.Activity("admin request").Start())
        {
            Assert.Null(Tracing.Start(source, new SpanNames("saga"), "orders", System.Diagnostics.ActivityKind.Consumer, TraceParent));
            Assert.Null(System.Diagnostics.Activity.Current);
        }
        // The same from a message's headers (the partition worker's way).
        using (new System.Diagnostics.Activity("admin request").Start())
        {
            var headers = new Dictionary<string, string>(StringComparer.Ordinal) { ["traceparent"] = TraceParent };
            Assert.Null(Tracing.Start(source, new SpanNames("saga"), "orders", System.Diagnostics.ActivityKind.Consumer, headers));
            Assert.Null(System.Diagnostics.Activity.Current);
        }
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
