using System.Text;
using System.Text.Json;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Messaging;
using Runner.Storage;

namespace Runner.Sagas.Quarantine;

/// <summary>Builds quarantine records: the reason and everything needed to understand or replay the message.</summary>
internal static class QuarantineRecords
{
    public const string MaxDeliverExceeded = "max_deliver_exceeded";
    public const string NoCorrelationKey = "no_correlation_key";
    public const string UnknownSaga = "unknown_saga";
    public const string InvalidRouting = "invalid_routing";
    public const string RouterError = "router_error";
    public const string ProcessingError = "processing_error";
    public const string CommandRejected = "command_rejected";
    public const string UnknownEffect = "unknown_effect";
    public const string InvalidTimer = "invalid_timer";
    public const string TimerRejected = "timer_rejected";
    public const string InvalidControl = "invalid_control";

    private static readonly UTF8Encoding s_strict = new(false, true);

    /// <summary>
    /// The record of a message a <see cref="PullConsumer"/> delivered; returns where it was read from. A header block
    /// the message's own reader could not read (the reason it is quarantined, maybe) is recorded as no headers, and
    /// said in the detail.
    /// </summary>
    public static MessageOrigin Add(
        WriteBatch batch,
        JetStreamMessage msg,
        string stage,
        string reason,
        string detail,
        int maxPayloadBytes,
        TimeProvider time,
        string? saga = null,
        string? tenant = null,
        string? key = null,
        PartitionId? partition = null,
        bool parked = false,
        bool counted = true)
    {
        var delivery = Delivery.Of(msg, out var stream);
        var origin = NatsMessages.Origin(msg, delivery, stream);
        Dictionary<string, string> headers;
        try
        {
            headers = NatsMessages.CopyHeaders(msg.Headers);
        }
        catch (FormatException ex)
        {
            headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            detail = $"{detail} (headers unreadable: {ex.Message})";
        }
        var message = new HeldMessage { InboxSequence = origin.Sequence, Subject = origin.Subject, Headers = headers, Data = msg.Data };
        Put(batch, message, origin.Stream, delivery!.Value.NumDelivered, stage, reason, detail, maxPayloadBytes, time, saga, tenant, key, partition, parked, counted);
        return origin;
    }

    /// <summary>A message held for a parked instance that failed again on resume: the same record, from the held copy.</summary>
    public static void AddHeld(
        WriteBatch batch,
        HeldMessage held,
        string inboxStream,
        string stage,
        string reason,
        string detail,
        int maxPayloadBytes,
        TimeProvider time,
        string? saga,
        string? tenant,
        string? key,
        PartitionId partition,
        bool parked = false,
        bool counted = true)
    {
        Put(batch, held, inboxStream, 0, stage, reason, detail, maxPayloadBytes, time, saga, tenant, key, partition, parked, counted);
    }

    /// <summary>Writes the record of <paramref name="message"/> (a message as read, or its held copy), stored as <paramref name="stream"/>#its sequence.</summary>
    private static void Put(
        WriteBatch batch,
        HeldMessage message,
        string stream,
        ulong deliveries,
        string stage,
        string reason,
        string detail,
        int maxPayloadBytes,
        TimeProvider time,
        string? saga,
        string? tenant,
        string? key,
        PartitionId? partition,
        bool parked,
        bool counted)
    {
        var payload = message.Data;
        var kept = payload.AsSpan(0, Math.Min(payload.Length, maxPayloadBytes));
        var (text, encoding) = PayloadText(kept);
        var now = time.GetUtcNow();
        var record = new QuarantineRecord
        {
            Reason = reason,
            Detail = detail,
            Stage = stage,
            Saga = saga,
            Tenant = tenant,
            Key = key,
            Partition = partition?.Value,
            Stream = stream,
            Sequence = message.InboxSequence,
            Subject = message.Subject,
            Headers = message.Headers,
            Payload = text,
            PayloadEncoding = encoding,
            PayloadBytes = payload.Length,
            PayloadTruncated = kept.Length < payload.Length,
            Deliveries = deliveries,
            Time = CloudEventEncoder.FormatTime(now),
            Parked = parked,
        };
        var keyBytes = StoreKeys.Quarantine(tenant, partition, now.ToUnixTimeMilliseconds(), stream, message.InboxSequence, saga);
        batch.Put(KeySpace.Quarantine, keyBytes, JsonSerializer.SerializeToUtf8Bytes(record, CoreJsonContext.Default.QuarantineRecord));
        if (counted)
        {
            Count(stage, reason);
        }
    }

    /// <summary>Counts a record as it is added to a write (a batch retried after a failed commit counts again).</summary>
    private static void Count(string stage, string reason) =>
        SagasTelemetry.Quarantined.Add(1, new(SagasTelemetry.StageTag, stage), new(SagasTelemetry.ReasonTag, reason));

    /// <summary>A command the relay could not publish and stopped retrying: kept whole, with the server's reason.</summary>
    public static void AddCommand(WriteBatch batch, string stream, string subject, Core.Transitions.CommandMessage command, byte[] body, string detail, int attempts, int maxPayloadBytes, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var (text, encoding) = PayloadText(body.AsSpan(0, Math.Min(body.Length, maxPayloadBytes)));
        var record = new QuarantineRecord
        {
            Reason = CommandRejected,
            Detail = detail,
            Stage = "relay",
            Saga = command.Saga,
            Tenant = command.Tenant,
            Key = command.CorrelationId,
            Stream = stream,
            Sequence = 0,
            Subject = subject,
            Headers = new Dictionary<string, string> { [EventHeaders.MsgId] = command.CommandId },
            Payload = text,
            PayloadEncoding = encoding,
            PayloadBytes = body.Length,
            PayloadTruncated = body.Length > maxPayloadBytes,
            Deliveries = (ulong)attempts,
            Time = CloudEventEncoder.FormatTime(now),
        };
        batch.Put(KeySpace.Quarantine, StoreKeys.Quarantine(command.Tenant, null, now.ToUnixTimeMilliseconds(), stream, 0, command.Saga + "/" + command.CommandId),
            JsonSerializer.SerializeToUtf8Bytes(record, CoreJsonContext.Default.QuarantineRecord));
        Count("relay", CommandRejected);
    }

    /// <summary>
    /// A timer the scheduler could not publish and stopped retrying (or a stored schedule item it
    /// could not read): kept whole, with the reason, and removed from the schedule in the same write.
    /// </summary>
    public static void AddTimer(WriteBatch batch, string stream, string subject, ScheduleRecord? record, byte[] body, string detail, int attempts, int maxPayloadBytes, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var (text, encoding) = PayloadText(body.AsSpan(0, Math.Min(body.Length, maxPayloadBytes)));
        var id = record is null ? null : TimerEvents.Id(record);
        var quarantined = new QuarantineRecord
        {
            Reason = TimerRejected,
            Detail = detail,
            Stage = "scheduler",
            Saga = record?.Saga,
            Tenant = record?.Tenant,
            Key = record?.Key,
            Stream = stream,
            Sequence = 0,
            Subject = subject,
            Headers = id is null ? [] : new Dictionary<string, string> { [EventHeaders.MsgId] = EventHeaders.Encode(id) },
            Payload = text,
            PayloadEncoding = encoding,
            PayloadBytes = body.Length,
            PayloadTruncated = body.Length > maxPayloadBytes,
            Deliveries = (ulong)attempts,
            Time = CloudEventEncoder.FormatTime(now),
        };
        // A digest of the timer id keeps the key short (LMDB keys are at most 511 bytes) and unique.
        batch.Put(KeySpace.Quarantine, StoreKeys.Quarantine(record?.Tenant, null, now.ToUnixTimeMilliseconds(), stream, 0, (record?.Saga ?? "-") + "/" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(id is null ? body : Encoding.UTF8.GetBytes(id)))[..24]),
            JsonSerializer.SerializeToUtf8Bytes(quarantined, CoreJsonContext.Default.QuarantineRecord));
        Count("scheduler", TimerRejected);
    }

    /// <summary>The payload as text when it is UTF-8, else as base64 — records are JSON, and must keep any bytes.</summary>
    private static (string Text, string Encoding) PayloadText(ReadOnlySpan<byte> payload)
    {
        try
        {
            return (s_strict.GetString(payload), "utf8");
        }
        catch (DecoderFallbackException)
        {
            return (Convert.ToBase64String(payload), "base64");
        }
    }

    /// <summary>All quarantine records, newest last, at most <paramref name="limit"/>.</summary>
    public static List<QuarantineRecord> List(LmdbStore store, int limit) =>
        store.Read(reader => reader.Scan(KeySpace.Quarantine, [], limit)
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.QuarantineRecord)!)
            .OrderBy(r => r.Time, StringComparer.Ordinal)
            .ToList());
}
