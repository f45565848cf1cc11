using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Bench.Floor;
using Runner.Messaging;

namespace Runner.Bench.Effects;

internal sealed partial class EffectsBench
{
    private const string FloorTag = "floor";

    /// <summary>
    /// (d'), the round trip's traffic alone: the JetStream hops, claim writes and HTTP call of one
    /// saga round trip of (d), made by the transport Runner uses (its pull consumers and batcher, its
    /// PubAck pipeline) with nothing between them — no saga script, no LMDB commit, no outbox, no
    /// resilience pipeline, no logs, metrics or traces. A router stage forwards each start event to an
    /// inbox (a batch at a time, acking once per batch); a partition stage turns it into a command;
    /// an effect stage claims, calls the loopback upstream, completes, publishes the result and acks;
    /// a router stage forwards the result to the inbox, where the partition stage counts the
    /// instance done. What this machine and server allow for the traffic of a round trip: (d) is read
    /// against it.
    /// </summary>
    public async Task<double> RoundTripFloorAsync(int concurrency, CancellationToken cancellationToken)
    {
        var n = _options.RoundTrips;
        await using var sagaSide = new NatsConnection(new NatsOpts { Url = _url, Name = "bench-floor-saga" });
        await sagaSide.ConnectAsync();
        await using var effectSide = new NatsConnection(new NatsOpts { Url = _url, Name = "bench-floor-effect" });
        await effectSide.ConnectAsync();
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        var call = new Uri(Upstream.Url, "call");
        var streams = _jetStream.Streams;
        var inbox = Core.Subjects.Subjects.InboxPrefix + "." + FloorTag;
        var commandSubject = $"workflow.cmd.{Tenant}.{FloorTag}.call";
        var resultSubject = $"workflow.evt.{Tenant}.{FloorTag}.call.succeeded";
        var failures = 0;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sagaJs = new NatsJSContext(sagaSide);
        var sagaPipeline = PubAckPipeline.For(sagaSide);
        Task[] stages =
        [
            // Router on the aggregate stream: each start event, as it came, to the inbox.
            Forward(sagaJs, sagaPipeline, streams.AggregateEvents, ConsumerPrefix + "-floor-router", $"aggregate.{Tenant}.{FloorTag}.*.created",
                msg => (inbox + ".start", msg.Data, "floor-in:" + TrafficFloor.StringProperty(msg.Data, "id")), stop.Token),
            // Partition: a start becomes a command; a result ends the instance.
            Forward(sagaJs, sagaPipeline, streams.Inbox, ConsumerPrefix + "-floor-partition", inbox + ".>", msg =>
            {
                if (msg.Subject.EndsWith(".start", StringComparison.Ordinal))
                {
                    var id = TrafficFloor.StringProperty(msg.Data, "id");
                    return (commandSubject, FloorCommand(id, commandSubject), "floor-cmd:" + id);
                }
                var key = TrafficFloor.StringProperty(msg.Data, "id");
                _timelines.Mark(key["result:".Length..], Done);
                return null;
            }, stop.Token),
            // The effect worker: claim, call, complete, publish the result, ack.
            ConsumeClaimFloorAsync(new ClaimFloor(effectSide, ConsumerPrefix + "-floor-effect", commandSubject, resultSubject, FloorTag, async id =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, call) { Content = new ByteArrayContent(Utf8($$"""{"n":"{{id}}"}""")) };
                request.Headers.Add("Idempotency-Key", id);
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, CancellationToken.None);
                response.EnsureSuccessStatusCode();
                _ = await response.Content.ReadAsByteArrayAsync(CancellationToken.None);
            }, null), concurrency, pipelined: true, () => Interlocked.Increment(ref failures), stop.Token),
            // Router on the workflow events: each result, as it came, to the inbox.
            Forward(sagaJs, sagaPipeline, streams.WorkflowEvents, ConsumerPrefix + "-floor-results", resultSubject,
                msg => (inbox + ".result", msg.Data, "floor-in:" + TrafficFloor.StringProperty(msg.Data, "id")), stop.Token),
        ];
        try
        {
            var warm = Math.Min(1_000, n);
            for (var round = 0; round < 5; round++)
            {
                var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
                var timeline = _timelines.Begin('f', warm, 2, round * warm);
                await PublishAsync(timeline, warm, i => FloorStart(timeline, i), cancellationToken);
                var finished = await WaitFinishedAsync(timeline, TimeSpan.FromSeconds(120), cancellationToken);
                var duringLoad = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
                var settled = await RunnerBench.SettleJitAsync(cancellationToken);
                _output.WriteLine(Text.Inv($"  warm-up round {round + 1}: {timeline.FinishedCount}/{warm} done{(finished ? string.Empty : " (INCOMPLETE)")}; JIT compiled {duringLoad} methods under load ({settled:F1} s pause)"));
                if (round >= 1 && duringLoad < 300)
                {
                    break;
                }
            }
            var track = _timelines.Begin('g', n, 2);
            var cpu = CpuSnapshot.Take(_natsPid);
            await PublishAsync(track, n, i => FloorStart(track, i), cancellationToken);
            var complete = await WaitFinishedAsync(track, TimeSpan.FromSeconds(Math.Max(60, n / 50)), cancellationToken);
            var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
            var seconds = ((complete ? track.LastFinishedUs : _timelines.NowUs()) - track.FirstPublishedUs) / 1e6;
            var rate = track.FinishedCount / seconds;
            _output.WriteLine(Text.Inv($"  burst  : {track.FinishedCount}/{n} round trips after {seconds:F3} s → {rate,9:F0} round trips/s ({failures} effect-stage failures){(complete ? string.Empty : "  (INCOMPLETE: timed out)")}"));
            cpuDelta.Print(_output, "  ", n, "round trip");
            return rate;
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(stages);
        }
    }

    private static (string Subject, byte[] Data) FloorStart(Timeline timeline, int n)
    {
        var key = timeline.Id(n);
        return ($"aggregate.{Tenant}.{FloorTag}.{key}.created",
            Utf8($$$"""{"specversion":"1.0","id":"{{{key}}}","source":"bench","type":"floor.created","datacontenttype":"application/json","data":{"n":{{{Inv(n)}}}}}"""));
    }

    /// <summary>A command as the relay publishes one (its fields, a payload of the start event's size).</summary>
    private static byte[] FloorCommand(string id, string subject) =>
        Utf8($$"""{"command_id":"{{id}}","tenant":"{{Tenant}}","effect":"{{FloorTag}}.call","saga":"{{FloorTag}}","correlation_id":"{{id}}","causation_id":"{{id}}","subject":"{{subject}}","payload":{"n":"{{id}}"},"created_at":"{{DateTimeOffset.UtcNow:O}}"}""");

    private Task Forward(INatsJSContext js, PubAckPipeline pipeline, string stream, string consumer, string filter,
        Func<JetStreamMessage, (string Subject, byte[] Data, string MsgId)?> forward, CancellationToken cancellationToken) =>
        TrafficFloor.ForwardAsync(js, pipeline, _jetStream, stream, consumer, filter, Math.Max(1, _options.Batch), _loggers.CreateLogger("bench-floor"), forward, cancellationToken);
}
