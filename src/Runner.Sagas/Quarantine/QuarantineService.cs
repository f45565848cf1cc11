using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Storage;

namespace Runner.Sagas.Quarantine;

/// <summary>Which quarantine records a request is about; every field optional, all given ones must match.</summary>
internal sealed record QuarantineFilter
{
    [JsonPropertyName("ids")] public List<string>? Ids { get; init; }
    [JsonPropertyName("reason")] public string? Reason { get; init; }
    [JsonPropertyName("stage")] public string? Stage { get; init; }
    [JsonPropertyName("saga")] public string? Saga { get; init; }
    [JsonPropertyName("tenant")] public string? Tenant { get; init; }
    [JsonPropertyName("key")] public string? Key { get; init; }

    /// <summary>Only records written before this time (Unix ms).</summary>
    [JsonPropertyName("before")] public long? BeforeMs { get; init; }

    /// <summary>Only records written at or after this time (Unix ms).</summary>
    [JsonPropertyName("after")] public long? AfterMs { get; init; }

    /// <summary>Include records already requeued (by default they are left out).</summary>
    [JsonPropertyName("requeued")] public bool IncludeRequeued { get; init; }
    [JsonPropertyName("limit")] public int Limit { get; init; } = 1000;

    /// <summary>True when nothing narrows the selection: a bulk action needs <c>all</c> said out loud.</summary>
    [JsonIgnore]
    public bool SelectsEverything => Ids is null && Reason is null && Stage is null && Saga is null && Tenant is null && Key is null && BeforeMs is null && AfterMs is null;

    public bool Matches(string id, QuarantineRecord record)
    {
        var at = DateTimeOffset.TryParse(record.Time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) ? time.ToUnixTimeMilliseconds() : 0;
        return (Ids is null || Ids.Contains(id, StringComparer.Ordinal))
            && (Reason is null || string.Equals(Reason, record.Reason, StringComparison.Ordinal))
            && (Stage is null || string.Equals(Stage, record.Stage, StringComparison.Ordinal))
            && (Saga is null || string.Equals(Saga, record.Saga, StringComparison.Ordinal))
            && (Tenant is null || string.Equals(Tenant, record.Tenant, StringComparison.Ordinal))
            && (Key is null || string.Equals(Key, record.Key, StringComparison.Ordinal))
            && (BeforeMs is not { } before || at < before)
            && (AfterMs is not { } after || at >= after)
            && (IncludeRequeued || Ids is not null || record.Requeued is null);
    }
}

/// <summary>A quarantine record with the id and the replica that holds it.</summary>
internal sealed record QuarantineEntry(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("worker")] string Worker,
    [property: JsonPropertyName("record")] QuarantineRecord Record);

/// <summary>One replica's answer to a list request.</summary>
internal sealed record QuarantineListReply
{
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("entries")] public List<QuarantineEntry> Entries { get; init; } = [];
    [JsonPropertyName("truncated")] public bool Truncated { get; init; }
}

/// <summary>Requeue or discard what a filter selects; with <see cref="DryRun"/>, only say what would happen.</summary>
internal sealed record QuarantineActRequest
{
    /// <summary>The replica whose records these are (ids are unique within one store).</summary>
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("action")] public required string Action { get; init; }
    [JsonPropertyName("filter")] public required QuarantineFilter Filter { get; init; }
    [JsonPropertyName("dry_run")] public bool DryRun { get; init; }
}

/// <summary>What became of one record.</summary>
internal sealed record QuarantineActResult
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    [JsonPropertyName("subject")] public required string Subject { get; init; }

    /// <summary><c>requeued</c>, <c>discarded</c>, <c>would_requeue</c>, <c>would_discard</c> or <c>refused</c>.</summary>
    [JsonPropertyName("outcome")] public required string Outcome { get; init; }
    [JsonPropertyName("detail")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Detail { get; init; }
    [JsonPropertyName("requeued_as")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public RequeueRecord? RequeuedAs { get; init; }
}

internal sealed record QuarantineActReply
{
    [JsonPropertyName("worker")] public required string Worker { get; init; }
    [JsonPropertyName("results")] public List<QuarantineActResult> Results { get; init; } = [];
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(QuarantineFilter))]
[JsonSerializable(typeof(QuarantineListReply))]
[JsonSerializable(typeof(QuarantineActRequest))]
[JsonSerializable(typeof(QuarantineActReply))]
[JsonSerializable(typeof(QuarantineEntry))]
[JsonSerializable(typeof(QuarantineActResult))]
internal sealed partial class QuarantineJsonContext : JsonSerializerContext;

/// <summary>
/// Answers quarantine requests over NATS for this process's store: quarantine records stay on the
/// replica that wrote them (a router, a partition owner, an effect worker), so every runner process
/// subscribes and each answers for its own; the asker gathers. <c>requeue</c> publishes the kept
/// message again where it failed — the trigger subject for the router, the partition inbox for the
/// saga worker, the command subject for the effect worker — under a new <c>Nats-Msg-Id</c>, and
/// records that id and the stored copy against the record; <c>discard</c> deletes the record.
/// </summary>
internal sealed class QuarantineService(INatsConnection nats, LmdbStore store, string prefix, string worker, ILogger logger, TimeProvider time)
{
    public const string Requeue = "requeue";
    public const string Discard = "discard";

    public static string ListSubject(string prefix) => $"{prefix}.admin.quarantine.list";

    public static string ActSubject(string prefix) => $"{prefix}.admin.quarantine.act";

    /// <summary>A record's id: the first 16 hex digits of the SHA-256 of its store key (unique within a store; the worker names the store).</summary>
    public static string IdOf(ReadOnlySpan<byte> key) => Convert.ToHexStringLower(SHA256.HashData(key))[..16];

    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(ServeAsync(ListSubject(prefix), AnswerListAsync, cancellationToken), ServeAsync(ActSubject(prefix), AnswerActAsync, cancellationToken));

    private async Task ServeAsync(string subject, Func<byte[], CancellationToken, ValueTask<byte[]?>> answer, CancellationToken cancellationToken)
    {
        await foreach (var msg in nats.SubscribeAsync<byte[]>(subject, cancellationToken: cancellationToken))
        {
            if (msg.ReplyTo is null)
            {
                continue;
            }
            byte[]? reply;
            try
            {
                reply = await answer(msg.Data ?? [], cancellationToken);
            }
            catch (JsonException ex)
            {
                reply = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["error"] = $"request is not valid JSON: {ex.Message}" }, CoreJsonContext.Default.DictionaryStringString);
            }
            if (reply is not null)
            {
                await msg.ReplyAsync(reply, cancellationToken: cancellationToken);
            }
        }
    }

    private ValueTask<byte[]?> AnswerListAsync(byte[] body, CancellationToken cancellationToken)
    {
        var filter = JsonSerializer.Deserialize(body, QuarantineJsonContext.Default.QuarantineFilter) ?? new QuarantineFilter();
        var (entries, truncated) = Select(filter);
        if (entries.Count == 0)
        {
            return ValueTask.FromResult<byte[]?>(null); // nothing here: stay silent
        }
        return ValueTask.FromResult<byte[]?>(JsonSerializer.SerializeToUtf8Bytes(
            new QuarantineListReply { Worker = worker, Entries = [.. entries.Select(e => new QuarantineEntry(e.Id, worker, e.Record))], Truncated = truncated },
            QuarantineJsonContext.Default.QuarantineListReply));
    }

    private async ValueTask<byte[]?> AnswerActAsync(byte[] body, CancellationToken cancellationToken)
    {
        var request = JsonSerializer.Deserialize(body, QuarantineJsonContext.Default.QuarantineActRequest);
        if (request is null || request.Action is not (Requeue or Discard) || !string.Equals(request.Worker, worker, StringComparison.Ordinal))
        {
            return null;
        }
        var (entries, _) = Select(request.Filter);
        var results = new List<QuarantineActResult>();
        var js = new NatsJSContext(nats);
        foreach (var (id, key, record) in entries)
        {
            results.Add(await ActAsync(js, request, id, key, record, cancellationToken));
        }
        return JsonSerializer.SerializeToUtf8Bytes(new QuarantineActReply { Worker = worker, Results = results }, QuarantineJsonContext.Default.QuarantineActReply);
    }

    private async Task<QuarantineActResult> ActAsync(INatsJSContext js, QuarantineActRequest request, string id, byte[] key, QuarantineRecord record, CancellationToken cancellationToken)
    {
        QuarantineActResult Result(string outcome, string? detail = null, RequeueRecord? copy = null) =>
            new() { Id = id, Worker = worker, Reason = record.Reason, Subject = record.Subject, Outcome = outcome, Detail = detail, RequeuedAs = copy };

        if (request.Action == Discard)
        {
            if (request.DryRun)
            {
                return Result("would_discard");
            }
            var batch = new WriteBatch();
            batch.Delete(KeySpace.Quarantine, key);
            await store.Writer.CommitAsync(batch, cancellationToken);
            QuarantineLog.Discarded(logger, id, record.Reason, record.Stream, record.Sequence);
            return Result("discarded");
        }
        if (RefuseRequeue(record) is { } refusal)
        {
            return Result("refused", refusal);
        }
        if (request.DryRun)
        {
            return Result("would_requeue");
        }
        var msgId = $"requeue:{id}:{(record.Requeued?.Count ?? 0) + 1}";
        var headers = new NatsHeaders();
        foreach (var (name, value) in record.Headers ?? [])
        {
            if (!string.Equals(name, EventHeaders.MsgId, StringComparison.OrdinalIgnoreCase))
            {
                headers[name] = value;
            }
        }
        headers["runner-requeued-from"] = id;
        var payload = record.PayloadEncoding == "base64" ? Convert.FromBase64String(record.Payload ?? "") : Encoding.UTF8.GetBytes(record.Payload ?? "");
        var ack = await js.PublishAsync(record.Subject, payload, headers: headers, opts: new NatsJSPubOpts { MsgId = msgId }, cancellationToken: cancellationToken);
        Messaging.PubAcks.EnsureStored(ack);
        var copy = new RequeueRecord { MsgId = msgId, Stream = ack.Stream ?? record.Stream, Sequence = ack.Seq, At = CloudEventEncoder.FormatTime(time.GetUtcNow()) };
        var updated = record with { Requeued = [.. record.Requeued ?? [], copy] };
        var write = new WriteBatch();
        write.Put(KeySpace.Quarantine, key, JsonSerializer.SerializeToUtf8Bytes(updated, CoreJsonContext.Default.QuarantineRecord));
        await store.Writer.CommitAsync(write, cancellationToken);
        QuarantineLog.Requeued(logger, id, record.Reason, record.Stream, record.Sequence, copy.Stream, copy.Sequence, msgId);
        return Result("requeued", copy: copy);
    }

    /// <summary>Why a record cannot be put back as it is, or null when it can.</summary>
    internal static string? RefuseRequeue(QuarantineRecord record) =>
        record.Parked ? "its instance is parked on this event: resume, skip or cancel the instance instead"
        : record.PayloadTruncated ? $"only {record.Payload?.Length ?? 0} of its {record.PayloadBytes} payload bytes were kept"
        : record.Payload is null ? "no payload was kept"
        : null;

    private (List<(string Id, byte[] Key, QuarantineRecord Record)> Entries, bool Truncated) Select(QuarantineFilter filter)
    {
        var found = new List<(string, byte[], QuarantineRecord)>();
        var truncated = false;
        store.Read(reader =>
        {
            reader.Visit(KeySpace.Quarantine, [], (key, value) =>
            {
                var id = IdOf(key);
                var record = JsonSerializer.Deserialize(value, CoreJsonContext.Default.QuarantineRecord);
                if (record is null || !filter.Matches(id, record))
                {
                    return;
                }
                if (found.Count >= filter.Limit)
                {
                    truncated = true;
                    return;
                }
                found.Add((id, key.ToArray(), record));
            });
            return 0;
        });
        return (found, truncated);
    }
}
