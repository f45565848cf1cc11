using System.Globalization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Effects.Claims;
using Runner.Messaging;

namespace Runner.Bench.Effects;

internal sealed partial class EffectsBench
{
    private const string SkeletonConsumer = ConsumerPrefix + "-skeleton";
    private const string ExpectedLastSubjectSequence = "Nats-Expected-Last-Subject-Sequence";

    private static string ResultSubject => $"workflow.evt.{Tenant}.{NoopEffect}.succeeded";

    /// <summary>
    /// (e)(i'), the claim protocol's floor: per command exactly the JetStream traffic the claim
    /// protocol makes (docs/effects.md, steps 2, 5, 6 and 7) — a create-only claim put, the
    /// completion put on its revision holding the result, the result publish with its message id,
    /// the ack — through the client's plain API, <paramref name="concurrency"/> commands at a
    /// time, and nothing else: no command validation, no resilience pipeline, no lease timer, no
    /// logs, no metrics. What the server and the client cost for the protocol alone on this machine.
    /// With <paramref name="pipelined"/> the writes go out as the worker sends them, through Runner's
    /// <see cref="PubAckPipeline"/> (many in flight, their PubAcks on one reply subscription); without,
    /// each is the client's own request-reply <c>PublishAsync</c>.
    /// </summary>
    private async Task<(int Done, double Seconds, int Errors)> SkeletonRunAsync(char prefix, int count, int offset, int concurrency, bool pipelined, bool print, CancellationToken cancellationToken)
    {
        var errors = 0;
        var label = pipelined ? "(i'') protocol, pipelined" : "(i')  protocol, client API";
        var (done, seconds) = await ConsumerRunAsync(prefix, count, offset, TimeSpan.FromSeconds(Math.Max(60, count / 100)),
            (timeline, token) => ConsumeSkeletonAsync(concurrency, pipelined, () => Interlocked.Increment(ref errors), token),
            print ? (done, seconds) => Text.Inv($"  {label}: {done}/{count} in {seconds:F3} s → {done / seconds,9:F0} commands/s  (claim create, completion, result publish, ack; {concurrency} at a time; {Volatile.Read(ref errors)} failed)") : null,
            cancellationToken);
        return (done, seconds, errors);
    }

    /// <summary>What the claim protocol's floor consumes and where it writes: (e)'s commands, or (d)'s floor's.</summary>
    private sealed record ClaimFloor(NatsConnection Connection, string Consumer, string CommandSubject, string ResultSubject, string KeyPrefix, Func<string, Task>? Perform, Action<string>? Finished);

    private Task ConsumeSkeletonAsync(int concurrency, bool pipelined, Action failed, CancellationToken cancellationToken) =>
        ConsumeClaimFloorAsync(new ClaimFloor(_connection!, SkeletonConsumer, CommandSubject, ResultSubject, "skeleton", null, id => _timelines.Mark(id, Done)),
            concurrency, pipelined, failed, cancellationToken);

    /// <summary>
    /// Per command: claim create, <see cref="ClaimFloor.Perform"/> (if any), completion, result publish, ack;
    /// <paramref name="concurrency"/> commands at a time.
    /// </summary>
    private async Task ConsumeClaimFloorAsync(ClaimFloor floor, int concurrency, bool pipelined, Action failed, CancellationToken cancellationToken)
    {
        var js = new NatsJSContext(floor.Connection);
        var pipeline = PubAckPipeline.For(floor.Connection);
        var stream = _jetStream.Streams.WorkflowCommands;
        var bucket = new EffectClaimOptions { Worker = "-" }.Bucket;
        var consumer = await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(floor.Consumer)
        {
            FilterSubject = floor.CommandSubject,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _jetStream.AckWait,
            MaxAckPending = _jetStream.MaxAckPending,
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
        }, cancellationToken);
        using var slots = new SemaphoreSlim(concurrency);
        try
        {
            var opts = new NatsJSConsumeOpts { MaxMsgs = concurrency, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromSeconds(5) };
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: cancellationToken))
            {
                await slots.WaitAsync(cancellationToken);
                _ = OneAsync(msg);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopped
        }
        // Let the commands in flight end before the consumer goes.
        for (var i = 0; i < concurrency; i++)
        {
            await slots.WaitAsync(CancellationToken.None);
        }
        await js.DeleteConsumerAsync(stream, floor.Consumer, CancellationToken.None);

        async Task OneAsync(INatsJSMsg<byte[]> msg)
        {
            try
            {
                var id = CommandId(msg.Data) ?? throw new InvalidOperationException("a command without its id");
                var key = $"$KV.{bucket}.{floor.KeyPrefix}.{id}";
                var claimedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                var running = Utf8($$"""{"state":"running","run":"{{Guid.NewGuid():N}}","worker":"bench-skeleton","attempt":1,"lease_until":{{claimedAt + 30_000}},"claimed_at":{{claimedAt}}}""");
                var created = await PutAsync(key, running, null, new NatsHeaders { [ExpectedLastSubjectSequence] = "0" });
                if (floor.Perform is { } perform)
                {
                    await perform(id);
                }
                var result = $$"""{"specversion":"1.0","id":"result:{{id}}","source":"runner/effects/bench-skeleton","type":"{{NoopEffect}}.succeeded","time":"{{DateTimeOffset.UtcNow:O}}","datacontenttype":"application/json","data":{"command_id":"{{id}}","tenant":"{{Tenant}}","effect":"{{NoopEffect}}","saga":"bench-claims","correlation_id":"{{id}}","status":"succeeded","attempts":1,"result":{} } }""";
                var completed = Utf8($$"""{"state":"completed","run":"-","worker":"bench-skeleton","attempt":1,"lease_until":{{claimedAt + 30_000}},"claimed_at":{{claimedAt}},"completed_at":{{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}},"result_subject":"{{floor.ResultSubject}}","result_event":{{result}}}""");
                await PutAsync(key, completed, null, new NatsHeaders { [ExpectedLastSubjectSequence] = created.ToString(CultureInfo.InvariantCulture) });
                await PutAsync(floor.ResultSubject, Utf8(result), "result:" + id, null);
                await msg.AckAsync(cancellationToken: CancellationToken.None);
                floor.Finished?.Invoke(id);
            }
            catch (Exception)
            {
                failed();
            }
            finally
            {
                slots.Release();
            }
        }

        async Task<ulong> PutAsync(string subject, byte[] body, string? msgId, NatsHeaders? headers)
        {
            if (!pipelined)
            {
                var ack = await js.PublishAsync(subject, body, opts: new NatsJSPubOpts { MsgId = msgId }, headers: headers, cancellationToken: CancellationToken.None);
                ack.EnsureSuccess();
                return ack.Seq;
            }
            var pending = await pipeline.PublishAsync(subject, body, msgId, headers, CancellationToken.None);
            var response = await pending.GetResponseAsync(CancellationToken.None);
            return response.Error is { } error ? throw new NatsJSApiException(error) : response.Seq;
        }
    }
}
