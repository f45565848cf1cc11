using System.Globalization;
using Runner.Slice.Expressions;

namespace Runner.Slice.Engine;

/// <summary>
/// Event time: the watermark trails the largest event time seen by the allowed lateness; a record
/// whose event time is below the watermark when it arrives is late. Event times are RFC 3339
/// strings, timestamps, or numbers of milliseconds since the Unix epoch; a record without one is
/// never late and does not move the watermark.
/// </summary>
internal sealed class EventTimeTracker(int slot, string field, TimeSpan allowedLateness)
{
    private long _maxTicks = long.MinValue;

    public string Field { get; } = field;

    public TimeSpan AllowedLateness { get; } = allowedLateness;

    /// <summary>UTC ticks below which records are late; null until an event time was seen.</summary>
    public long? Watermark => _maxTicks == long.MinValue ? null : _maxTicks - AllowedLateness.Ticks;

    /// <summary>Notes the record's event time; true when the record is late.</summary>
    public bool Observe(SliceRecord record)
    {
        if (Ticks(record.Get(slot)) is not { } ticks)
        {
            return false;
        }
        if (Watermark is { } watermark && ticks < watermark)
        {
            return true;
        }
        _maxTicks = Math.Max(_maxTicks, ticks);
        return false;
    }

    /// <summary>Dead-letters <paramref name="record"/> as <c>late_event</c> when it is late; true when it was.</summary>
    public bool DeadLetterIfLate(SliceRecord record, RecordBatch batch)
    {
        if (!Observe(record))
        {
            return false;
        }
        record.Live = false;
        batch.DeadLetters.Add(new DeadLetter("source", Field, DeadLetterCodes.LateEvent,
            $"event time is below the watermark (allowed lateness {AllowedLateness.TotalMilliseconds} ms)", record.Offset, record.Line)
        {
            RawStart = record.RawStart,
            RawLength = record.RawLength,
            RawIsJson = record.RawIsJson,
        });
        return true;
    }

    private static long? Ticks(Value value) => value.Kind switch
    {
        ValueKind.Timestamp => value.AsTimestamp.UtcTicks,
        ValueKind.String when DateTimeOffset.TryParse(value.AsString, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) => parsed.UtcTicks,
        ValueKind.Integer => SafeMs(value.AsInteger),
        ValueKind.Double => SafeMs((long)value.AsDouble),
        _ => null,
    };

    private static long? SafeMs(long ms) =>
        ms is >= -62_135_596_800_000 and <= 253_402_300_799_999 ? DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcTicks : null;
}
