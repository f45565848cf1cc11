using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Messaging;
using Runner.Sagas.Quarantine;
using Runner.Storage;

namespace Runner.Sagas.Scheduling;

internal sealed partial class TimerScheduler
{
    private static readonly SpanNames s_timerSpans = new("timer");

    private sealed class Firing(byte[] key, ScheduleRecord record, string subject, byte[] body)
    {
        public byte[] Key { get; } = key;
        public ScheduleRecord Record { get; } = record;
        public string Subject { get; } = subject;
        public byte[] Body { get; } = body;
        public long SentMs { get; set; }
        public PendingPubAck? Future { get; set; }
    }

    /// <summary>
    /// Publishes due items, all in flight at once, then deletes, in one write, every item whose
    /// timer event the stream stored (invariant 3). Returns how many are left to retry.
    /// </summary>
    private async Task<int> FireAsync(List<KeyValuePair<byte[], byte[]>> items, CancellationToken cancellationToken)
    {
        var stream = _options.JetStream.Streams.WorkflowEvents;
        var done = new WriteBatch();
        var firings = new List<Firing>(items.Count);
        foreach (var (key, value) in items)
        {
            var record = Read(value, out var problem);
            if (record is null)
            {
                // Nothing can ever publish it, and left in place it would hold up every timer behind it.
                QuarantineRecords.AddTimer(done, stream, "-", null, value, $"stored schedule item is unreadable: {problem}", 0, _options.QuarantinePayloadBytes, _time);
                done.Delete(KeySpace.Schedule, key);
                continue;
            }
            var firing = new Firing(key, record, Core.Subjects.Subjects.Timer(record.Tenant, record.Saga), TimerEvents.Body(record));
            firings.Add(firing);
            using var span = Tracing.Start(SagasTelemetry.Source, s_timerSpans, record.Saga, System.Diagnostics.ActivityKind.Producer, record.TraceParent);
            try
            {
                firing.SentMs = NowMs();
                firing.Future = await _publisher.PublishAsync(
                    firing.Subject,
                    firing.Body,
                    EventHeaders.Encode(TimerEvents.Id(record)),
                    NatsMessages.EndToEnd(record.Tenant, record.Key, record.CausationId, Tracing.TraceParent(span, record.TraceParent)),
                    cancellationToken);
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                firing.Future = null;
            }
        }

        var failed = 0;
        var fired = 0;
        foreach (var firing in firings)
        {
            if (firing.Future is not { } future)
            {
                failed++;
                continue;
            }
            try
            {
                var ack = await future.GetResponseAsync(cancellationToken);
                ack.EnsureStored();
                done.Delete(KeySpace.Schedule, firing.Key);
                if (_rejections.Count > 0)
                {
                    _rejections.Remove(firing.Key);
                }
                fired++;
                SagasTelemetry.SchedulerLagMs.Record(Math.Max(0, firing.SentMs - firing.Record.DueMs), _partitionTag);
            }
            catch (NatsJSApiException ex) when (PubAcks.IsPermanent(ex))
            {
                // The server answered and refused (larger than the stream allows): the same bytes
                // will not be stored later either. After the limit, keep it in quarantine.
                var id = firing.Key;
                var attempts = _rejections.GetValueOrDefault(id) + 1;
                _rejections[id] = attempts;
                if (attempts >= _options.JetStream.MaxDeliver)
                {
                    _rejections.Remove(id);
                    QuarantineRecords.AddTimer(done, stream, firing.Subject, firing.Record, firing.Body, ex.Message, attempts, _options.QuarantinePayloadBytes, _time);
                    done.Delete(KeySpace.Schedule, firing.Key);
                    SagasLog.TimerQuarantined(_logger, TimerEvents.Id(firing.Record), attempts, ex.Message);
                }
                else
                {
                    failed++;
                }
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                failed++;
            }
        }

        if (done.Count > 0)
        {
            try
            {
                await _store.Writer.CommitAsync(done, cancellationToken);
            }
            catch (StorageException ex)
            {
                // Published but not deleted: they go out again with the same Nats-Msg-Id, and the
                // saga's dedupe marker drops a copy the server's window no longer catches.
                SagasLog.SchedulerDeleteFailed(_logger, _partition.Value, fired, ex.Message);
                return failed + fired;
            }
        }
        if (fired > 0)
        {
            Interlocked.Add(ref _fired, fired);
            SagasTelemetry.TimersFiredTotal.Add(fired, _partitionTag);
        }
        return failed;
    }

    private static ScheduleRecord? Read(byte[] value, out string? problem)
    {
        problem = null;
        try
        {
            return JsonSerializer.Deserialize(value, CoreJsonContext.Default.ScheduleRecord);
        }
        catch (JsonException ex)
        {
            problem = ex.Message;
            return null;
        }
    }
}
