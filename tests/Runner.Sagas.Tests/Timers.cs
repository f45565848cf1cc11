using System.Text.Json;
using NATS.Client.Core;
using Runner.Core.Transitions;
using Runner.Testing;

namespace Runner.Sagas.Tests;

/// <summary>What the timer tests publish to the <c>timed</c> saga and read back.</summary>
internal static class Timers
{
    public sealed record Fired(string Name, long Due, long Now, string Id);

    /// <summary>A <c>set</c> event: the saga returns <paramref name="schedules"/> and <paramref name="cancel"/> as they are.</summary>
    public static Task SetAsync(SagaHarness h, string key, string eventId, object[]? schedules = null, string[]? cancel = null,
        string saga = "timed", NatsHeaders? headers = null, CancellationToken cancellationToken = default) =>
        h.PublishAsync($"aggregate.acme.{saga}.{key}.set", SagaHarness.CloudEvent(eventId, "set", new { schedules, cancel }), headers, cancellationToken: cancellationToken);

    public static List<Fired> FiredOf(SagaInstanceRecord? instance) =>
        instance is null
            ? []
            : instance.State.GetProperty("fired").EnumerateArray()
                .Select(f => new Fired(f.GetProperty("name").GetString()!, f.GetProperty("due").GetInt64(), f.GetProperty("now").GetInt64(), f.GetProperty("id").GetString()!))
                .ToList();

    public static List<string> SeenOf(SagaInstanceRecord? instance) =>
        instance is null ? [] : instance.State.GetProperty("seen").EnumerateArray().Select(e => e.GetString()!).ToList();

    /// <summary>Every timer event on WORKFLOW_EVENTS so far: subject, parsed body, headers.</summary>
    public static async Task<List<(string Subject, JsonElement Body, NatsHeaders? Headers)>> EventsAsync(SagaHarness h, CancellationToken cancellationToken) =>
        (await h.MessagesAsync(h.Options.JetStream.Streams.WorkflowEvents, cancellationToken))
            .Where(m => m.Subject.Contains(".timer.", StringComparison.Ordinal))
            .Select(m => (m.Subject, JsonDocument.Parse(m.Data).RootElement.Clone(), m.Headers))
            .ToList();

    public static string Id((string Subject, JsonElement Body, NatsHeaders? Headers) evt) => evt.Body.GetProperty("id").GetString()!;
}
