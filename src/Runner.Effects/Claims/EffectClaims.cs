using System.Runtime.CompilerServices;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using Runner.Messaging;

namespace Runner.Effects.Claims;

/// <summary>What a claim attempt found.</summary>
internal abstract record ClaimDecision
{
    /// <summary>This worker now holds the command and must run it.</summary>
    public sealed record Claimed(Claim Claim) : ClaimDecision;

    /// <summary>The command already ran to completion: re-publish its stored result.</summary>
    public sealed record AlreadyCompleted(ClaimRecord Record) : ClaimDecision;

    /// <summary>Another worker holds a live lease: leave the command, it comes back later.</summary>
    public sealed record HeldElsewhere(string Worker, TimeSpan Remaining) : ClaimDecision;
}

/// <summary>
/// Global, exactly-once claims of commands in a replicated NATS KV bucket. A claim is a
/// create-only put (the first worker wins everywhere, not just on one node); a running claim
/// carries a lease that its worker renews with compare-and-set on the entry's revision, so a
/// worker that lost its lease can no longer renew or complete it; a completed claim keeps the
/// result event so a redelivered command re-publishes it instead of running again.
/// </summary>
internal sealed class EffectClaims
{
    private readonly INatsKVStore _kv;
    private readonly KVPuts _puts;
    private readonly TimeProvider _time;

    private EffectClaims(INatsKVStore kv, KVPuts puts, string worker, TimeSpan lease, TimeProvider time)
    {
        _kv = kv;
        _puts = puts;
        Worker = worker;
        Lease = lease;
        _time = time;
    }

    public string Worker { get; }

    public TimeSpan Lease { get; }

    /// <summary>Opens the bucket, creating it (file storage, history 1) when it does not exist; an existing one is left as configured.</summary>
    public static async Task<EffectClaims> OpenAsync(INatsJSContext js, EffectClaimOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        var context = new NatsKVContext(js);
        INatsKVStore store;
        try
        {
            store = await context.GetStoreAsync(options.Bucket, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            store = await CreateOrOpen.RunAsync(
                ct => context.CreateStoreAsync(
                    new NatsKVConfig(options.Bucket)
                    {
                        History = 1,
                        MaxAge = options.Retention,
                        NumberOfReplicas = options.Replicas,
                        Storage = NatsKVStorageType.File,
                        Description = "Runner effect claims: one entry per (tenant, command id)",
                    },
                    ct),
                ct => context.GetStoreAsync(options.Bucket, ct),
                cancellationToken);
        }
        return Create(store, js.Connection, options, time);
    }

    /// <summary>Claims in <paramref name="store"/>, written over <paramref name="connection"/> (the store's own, but for tests of lost PubAcks).</summary>
    internal static EffectClaims Create(INatsKVStore store, INatsConnection connection, EffectClaimOptions options, TimeProvider time) =>
        new(store, new KVPuts(PubAckPipeline.For(connection), store.Bucket), options.Worker, options.Lease, time);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ClaimDecision> ClaimAsync(string tenant, string commandId, CancellationToken cancellationToken)
    {
        var key = ClaimKeys.For(tenant, commandId);
        var now = NowMs();
        var fresh = Running(1, now);
        // Revision 0: only if the key holds nothing. A released (deleted) claim is created again at its delete marker's revision.
        ulong expected = 0;
        // Three rounds at most: a released claim to create at its marker, and an entry can vanish between a failed create and the read (retention).
        for (var round = 0; round < 3; round++)
        {
            bool unanswered;
            try
            {
                if (await TryPutAsync(key, fresh, expected, cancellationToken) is { } created)
                {
                    return new ClaimDecision.Claimed(new Claim(this, key, created, fresh, takeover: false));
                }
                unanswered = false;
            }
            catch (Exception ex) when (ex is TimeoutException or NatsNoReplyException)
            {
                // The server may have stored the create although its PubAck never came (or the reply
                // subscription ended before it did): the read below tells.
                unanswered = true;
            }

            var read = await ReadOrMarkerAsync(key, cancellationToken);
            if (read.Deleted is { } marker)
            {
                expected = marker;
                continue;
            }
            if (read.Entry is not { } entry)
            {
                if (unanswered)
                {
                    throw new TimeoutException($"claim {key}: no PubAck for its create, and the entry is not there");
                }
                expected = 0;
                continue;
            }
            var (record, revision) = entry;
            if (record.Run == fresh.Run)
            {
                // Our create was applied but its PubAck was lost.
                return new ClaimDecision.Claimed(new Claim(this, key, revision, record, takeover: false));
            }
            if (record.State == ClaimRecord.Completed)
            {
                return new ClaimDecision.AlreadyCompleted(record);
            }
            now = NowMs();
            if (record.LeaseUntilMs > now)
            {
                return new ClaimDecision.HeldElsewhere(record.Worker, TimeSpan.FromMilliseconds(record.LeaseUntilMs - now));
            }

            // The lease ran out: its worker died or stalled mid-effect. Take it over with
            // compare-and-set, so of several workers seeing the same expired lease only one wins.
            var takeover = Running(record.Attempt + 1, now);
            if (await UpdateAsync(key, takeover, revision, cancellationToken) is { } updated)
            {
                return new ClaimDecision.Claimed(new Claim(this, key, updated, takeover, takeover: true) { PreviousWorker = record.Worker });
            }
            return new ClaimDecision.HeldElsewhere("(another worker took it over)", Lease);
        }
        return new ClaimDecision.HeldElsewhere("(claim changing)", TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// Compare-and-set on <paramref name="revision"/>. Returns the new revision, or null when the
    /// entry is no longer this run's. A write the server applied but whose reply was lost is
    /// recognised by the run id and adopted.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<ulong?> UpdateAsync(string key, ClaimRecord record, ulong revision, CancellationToken cancellationToken)
    {
        for (var round = 0; round < 3; round++)
        {
            if (await TryPutAsync(key, record, revision, cancellationToken) is { } updated)
            {
                return updated;
            }
            var current = await ReadAsync(key, cancellationToken);
            if (current is not { } entry || entry.Record.Run != record.Run)
            {
                return null;
            }
            if (entry.Record.State == record.State && entry.Record.LeaseUntilMs == record.LeaseUntilMs)
            {
                return entry.Revision;
            }
            // An earlier write of this same run was applied although its reply never came (a
            // cancelled or timed-out renewal): the claim is still ours, at a newer revision.
            revision = entry.Revision;
        }
        return null;
    }

    /// <summary>The claim writes go through the process's PubAck pipeline (see <see cref="KVPuts"/>): creates, renewals and completions of all its commands in flight at once.</summary>
    private ValueTask<ulong?> TryPutAsync(string key, ClaimRecord record, ulong expected, CancellationToken cancellationToken) =>
        _puts.TryPutAsync(key, Serialize(record), expected, cancellationToken);

    /// <summary>
    /// Deletes the entry if it is still at <paramref name="revision"/>: a released claim, which the
    /// next worker creates afresh. False when the entry moved on (it is no longer this run's).
    /// </summary>
    internal async ValueTask<bool> DeleteAsync(string key, ulong revision, CancellationToken cancellationToken)
    {
        var deleted = await _kv.TryDeleteAsync(key, new NatsKVDeleteOpts { Revision = revision }, cancellationToken);
        if (deleted.Success || deleted.Error is NatsKVWrongLastRevisionException)
        {
            return deleted.Success;
        }
        throw deleted.Error;
    }

    /// <summary>The stored claim of a command, or null when there is none (for tests and the CLI).</summary>
    public async ValueTask<ClaimRecord?> GetAsync(string tenant, string commandId, CancellationToken cancellationToken) =>
        (await ReadAsync(ClaimKeys.For(tenant, commandId), cancellationToken))?.Record;

    private async ValueTask<(ClaimRecord Record, ulong Revision)?> ReadAsync(string key, CancellationToken cancellationToken) =>
        (await ReadOrMarkerAsync(key, cancellationToken)).Entry;

    /// <summary>The entry, or the revision of its delete marker (a released claim), or neither.</summary>
    private async ValueTask<((ClaimRecord Record, ulong Revision)? Entry, ulong? Deleted)> ReadOrMarkerAsync(string key, CancellationToken cancellationToken)
    {
        var entry = await _kv.TryGetEntryAsync(key, serializer: NatsRawSerializer<byte[]>.Default, cancellationToken: cancellationToken);
        if (!entry.Success)
        {
            return entry.Error switch
            {
                NatsKVKeyDeletedException deleted => (null, deleted.Revision),
                NatsKVKeyNotFoundException => (null, null),
                _ => throw entry.Error,
            };
        }
        var record = Deserialize(entry.Value.Value)
            ?? throw new InvalidDataException($"claim {key} holds a value that is not a claim record");
        return ((record, entry.Value.Revision), null);
    }

    internal long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    internal TimeProvider Time => _time;

    internal ClaimRecord Running(int attempt, long now) => new()
    {
        State = ClaimRecord.Running,
        Run = Guid.NewGuid().ToString("N"),
        Worker = Worker,
        Attempt = attempt,
        LeaseUntilMs = now + (long)Lease.TotalMilliseconds,
        ClaimedAtMs = now,
    };

    internal static byte[] Serialize(ClaimRecord record) => JsonSerializer.SerializeToUtf8Bytes(record, ClaimJsonContext.Relaxed.ClaimRecord);

    private static ClaimRecord? Deserialize(byte[]? value)
    {
        if (value is null || value.Length == 0)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(value, ClaimJsonContext.Relaxed.ClaimRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// A claim this worker holds on one command: renew it while the effect runs, complete it with the
/// result. Renewal and completion never overlap (they share one revision), and once the claim is
/// lost every later call says so.
/// </summary>
internal sealed class Claim : IDisposable
{
    private readonly EffectClaims _claims;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ClaimRecord _record;
    private ulong _revision;

    internal Claim(EffectClaims claims, string key, ulong revision, ClaimRecord record, bool takeover)
    {
        _claims = claims;
        Key = key;
        _revision = revision;
        _record = record;
        Takeover = takeover;
    }

    public string Key { get; }

    /// <summary>1 for the first execution, +1 per takeover of an abandoned claim.</summary>
    public int Attempt => _record.Attempt;

    /// <summary>True when this run takes over a claim whose worker's lease had run out.</summary>
    public bool Takeover { get; }

    public string? PreviousWorker { get; init; }

    public bool Completed => _record.State == ClaimRecord.Completed;

    /// <summary>The lease as last confirmed by the server: past it, another worker may take over.</summary>
    public long LeaseUntilMs => _record.LeaseUntilMs;

    /// <summary>
    /// Extends the lease. False when the claim is no longer ours (our lease ran out and another
    /// worker took over). A completed claim needs no lease and is left as it is.
    /// </summary>
    /// <param name="replyDelay">For tests: the server's reply takes this much longer to come back.</param>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> RenewAsync(CancellationToken cancellationToken, TimeSpan? replyDelay = null)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (Completed)
            {
                return true;
            }
            var renewed = _record with { LeaseUntilMs = _claims.NowMs() + (long)_claims.Lease.TotalMilliseconds };
            return await WriteAsync(renewed, cancellationToken, replyDelay);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Gives the claim up, so that any worker may claim the command at once: for a command that is
    /// not being performed (nothing in flight). False when the claim is no longer ours.
    /// </summary>
    public async ValueTask<bool> ReleaseAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return !Completed && await _claims.DeleteAsync(Key, _revision, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Marks the command completed with its result event. False when the claim is no longer ours.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> CompleteAsync(string subject, byte[] resultEvent, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (Completed)
            {
                return true;
            }
            var completed = _record with
            {
                State = ClaimRecord.Completed,
                CompletedAtMs = _claims.NowMs(),
                ResultSubject = subject,
                ResultEvent = resultEvent,
            };
            return await WriteAsync(completed, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WriteAsync(ClaimRecord next, CancellationToken cancellationToken, TimeSpan? replyDelay = null)
    {
        var revision = await _claims.UpdateAsync(Key, next, _revision, cancellationToken);
        if (replyDelay is { } delay)
        {
            await Task.Delay(delay, _claims.Time, cancellationToken);
        }
        if (revision is null)
        {
            return false;
        }
        _revision = revision.Value;
        _record = next;
        return true;
    }

    public void Dispose() => _gate.Dispose();
}

/// <summary>Where claims live and how long a lease lasts.</summary>
internal sealed record EffectClaimOptions
{
    public string Bucket { get; init; } = "RUNNER_EFFECTS";
    public int Replicas { get; init; } = 1;

    /// <summary>How long a claim (and so a completed command's result) is kept.</summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>A running claim not renewed for this long is taken over by another worker.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(30);

    public required string Worker { get; init; }
}
