namespace Runner.Core.Events;

/// <summary>Where a message was read from: the stream, its sequence there, its subject and stored time.</summary>
internal readonly record struct MessageOrigin(string Stream, ulong Sequence, string Subject, DateTimeOffset Timestamp);

/// <summary>
/// A decoded CloudEvents 1.0 event, normalized: the id is never empty (defaulted to
/// <c>{stream}:{sequence}</c>), the tenant is known, the time is known (defaulted to the time the
/// stream stored the message, which is stable across redeliveries). <see cref="Data"/> is the
/// event's <c>data</c> as UTF-8 JSON.
/// </summary>
internal sealed record SagaEvent(
    string Id,
    string Type,
    string Source,
    string? CeSubject,
    DateTimeOffset Time,
    string Tenant,
    string? DataContentType,
    ReadOnlyMemory<byte> Data,
    IReadOnlyDictionary<string, string> Headers,
    MessageOrigin Origin)
{
    public long TimeMs => Time.ToUnixTimeMilliseconds();

    /// <summary>
    /// <see cref="Data"/> as text, made on each read: for tools and tests. The hot paths read the
    /// UTF-8 (for a structured event, a slice of the message body itself).
    /// </summary>
    public string DataJson => System.Text.Encoding.UTF8.GetString(Data.Span);
}
