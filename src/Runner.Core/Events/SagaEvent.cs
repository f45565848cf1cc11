namespace Runner.Core.Events;

/// <summary>Where a message was read from: the stream, its sequence there, its subject and stored time.</summary>
internal readonly record struct MessageOrigin(string Stream, ulong Sequence, string Subject, DateTimeOffset Timestamp);

/// <summary>
/// A decoded CloudEvents 1.0 event, normalized: the id is never empty (defaulted to
/// <c>{stream}:{sequence}</c>), the tenant is known, the time is known (defaulted to the time the
/// stream stored the message, which is stable across redeliveries).
/// </summary>
internal sealed record SagaEvent(
    string Id,
    string Type,
    string Source,
    string? CeSubject,
    DateTimeOffset Time,
    string Tenant,
    string? DataContentType,
    string DataJson,
    IReadOnlyDictionary<string, string> Headers,
    MessageOrigin Origin)
{
    public long TimeMs => Time.ToUnixTimeMilliseconds();
}
