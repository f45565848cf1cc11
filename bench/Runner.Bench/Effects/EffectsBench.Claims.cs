using System.Text.Json;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Manifests;
using Runner.Effects;
using Runner.Effects.Resilience;

namespace Runner.Bench.Effects;

internal sealed partial class EffectsBench
{
    public sealed record ClaimRun(int Workers, int Done, double Seconds, double Rate, IReadOnlyList<long> PerWorker, long Republished, bool Complete);

    public sealed record ClaimsResult(double PlainRate, double ClientSkeletonRate, double SkeletonRate, ClaimRun One, ClaimRun Two, Percentiles PlainIdle, Percentiles ClaimIdle, int Commands);

    private const string NoopEffect = "bench.noop";
    private const int ClaimProbes = 200;
    private const int Done = 1;
    private const string PlainConsumer = ConsumerPrefix + "-plain";

    private static string CommandSubject => $"workflow.cmd.{Tenant}.{NoopEffect}";

    private static (string Subject, byte[] Data) Command(Timeline timeline, int n)
    {
        var id = timeline.Id(n);
        var createdAt = TimeProvider.System.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        return (CommandSubject, Utf8($$$"""{"command_id":"{{{id}}}","tenant":"{{{Tenant}}}","effect":"{{{NoopEffect}}}","saga":"bench-claims","correlation_id":"{{{id}}}","causation_id":"bench-{{{id}}}","payload":{"n":{{{Inv(n)}}}},"created_at":"{{{createdAt}}}"}"""));
    }

    public async Task<ClaimsResult> ClaimsAsync(CancellationToken cancellationToken)
    {
        var m = _options.Commands;
        var effect = NoopProvider.Effect(NoopEffect, _options.EffectConcurrency);
        var executor = new EffectExecutor([new NoopProvider()], TimeProvider.System, _loggers.CreateLogger<EffectExecutor>());
        _logs.CommandDone = id => _timelines.Mark(id, Done);
        _output.WriteLine(Text.Inv($"  {m} commands on {CommandSubject} (WORKFLOW_COMMANDS purged before each run, all published before it starts); effect '{NoopEffect}': no-op provider, concurrency {effect.Concurrency}, manifest-default retry/breaker/timeout"));
        try
        {
            // Warm-up of both paths in rounds, not measured, until a round leaves the JIT little to
            // compile; the protocol traffic per command is counted here.
            var warm = Math.Min(2_000, m);
            string plainWire = string.Empty;
            string claimWire = string.Empty;
            string skeletonWire = string.Empty;
            string clientSkeletonWire = string.Empty;
            for (var round = 0; round < 5; round++)
            {
                var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
                await using (var wire = await WireCounter.StartAsync(_connection!, cancellationToken))
                {
                    await PlainRunAsync('u', warm, round * warm, print: false, cancellationToken);
                    await _connection!.PingAsync(cancellationToken);
                    plainWire = wire.PerCommand(warm);
                }
                await using (var wire = await WireCounter.StartAsync(_connection!, cancellationToken))
                {
                    await ClaimRunAsync('v', warm, round * warm, 1, effect, executor, print: false, cancellationToken);
                    await _connection!.PingAsync(cancellationToken);
                    claimWire = wire.PerCommand(warm);
                }
                await using (var wire = await WireCounter.StartAsync(_connection!, cancellationToken))
                {
                    await SkeletonRunAsync('t', warm, round * warm, effect.Concurrency, pipelined: true, print: false, cancellationToken);
                    await _connection!.PingAsync(cancellationToken);
                    skeletonWire = wire.PerCommand(warm);
                }
                await using (var wire = await WireCounter.StartAsync(_connection!, cancellationToken))
                {
                    await SkeletonRunAsync('r', warm, round * warm, effect.Concurrency, pipelined: false, print: false, cancellationToken);
                    await _connection!.PingAsync(cancellationToken);
                    clientSkeletonWire = wire.PerCommand(warm);
                }
                var duringLoad = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
                var settled = await RunnerBench.SettleJitAsync(cancellationToken);
                _output.WriteLine(Text.Inv($"  warm-up round {round + 1}: {warm} commands through each path; JIT compiled {duringLoad} methods under load ({settled:F1} s pause)"));
                if (round >= 1 && duringLoad < 300)
                {
                    break;
                }
            }
            _output.WriteLine($"  on the wire per command (last warm-up round): plain         {plainWire}");
            _output.WriteLine($"                                                effect worker {claimWire}");
            _output.WriteLine($"                                                protocol only {skeletonWire} (pipelined; {clientSkeletonWire} through the client's API)");

            var (plainDone, plainSeconds) = await PlainRunAsync('p', m, 0, print: true, cancellationToken);
            var plainRate = plainDone / plainSeconds;
            var (clientDone, clientSeconds, _) = await SkeletonRunAsync('o', m, 0, effect.Concurrency, pipelined: false, print: true, cancellationToken);
            var (skeletonDone, skeletonSeconds, _) = await SkeletonRunAsync('s', m, 0, effect.Concurrency, pipelined: true, print: true, cancellationToken);
            var one = await ClaimRunAsync('c', m, 0, 1, effect, executor, print: true, cancellationToken);
            var two = await ClaimRunAsync('d', m, 0, 2, effect, executor, print: true, cancellationToken);
            if (_options.ClaimAheadAb.Length > 1)
            {
                await ClaimAheadAbAsync(m, effect, executor, cancellationToken);
            }

            // Idle latency: one command at a time through each path.
            await PurgeAsync(_jetStream.Streams.WorkflowCommands, cancellationToken);
            var plainProbes = _timelines.Begin('q', ClaimProbes, 2);
            Percentiles plainIdle;
            using (var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                var consumer = ConsumePlainAsync(plainProbes, stop.Token);
                await WaitPullingAsync(PlainConsumer, cancellationToken);
                plainIdle = await ProbeAsync(plainProbes, i => Command(plainProbes, i), cancellationToken);
                await stop.CancelAsync();
                await consumer;
            }
            var claimProbes = _timelines.Begin('k', ClaimProbes, 2);
            Percentiles claimIdle;
            await using (var node = await StartNodeAsync("bench-w1", effect, executor, cancellationToken))
            {
                await WaitPullingAsync(node.Runtime.Workers.Single().Consumer, cancellationToken);
                claimIdle = await ProbeAsync(claimProbes, i => Command(claimProbes, i), cancellationToken);
            }
            _output.WriteLine($"  idle, one command at a time, publish → acked:");
            _output.WriteLine($"    plain consume+ack        {plainIdle.Summary()}");
            _output.WriteLine($"    effect worker (claim)    {claimIdle.Summary()}");
            return new ClaimsResult(plainRate, clientDone / clientSeconds, skeletonDone / skeletonSeconds, one, two, plainIdle, claimIdle, m);
        }
        finally
        {
            _logs.CommandDone = null;
        }
    }

    private Task<WorkerNode> StartNodeAsync(string worker, EffectManifest effect, IEffectExecutor executor, CancellationToken cancellationToken) =>
        WorkerNode.StartAsync(_url, worker, [effect], executor, Quarantine, _jetStream, ConsumerPrefix, _claimAhead ?? _options.EffectClaimAhead, _loggers, cancellationToken);

    /// <summary>Which variant goes <paramref name="v"/>-th in <paramref name="round"/>: in order, then in reverse, so none always follows another.</summary>
    private static int AbTurn(int round, int v, int count) => round % 2 == 0 ? v : count - 1 - v;

    /// <summary>"median [lowest–highest]" of <paramref name="values"/>.</summary>
    private static string MedianRange(IEnumerable<double> values, string format)
    {
        var sorted = values.Order().ToList();
        return Text.Inv($"{sorted[sorted.Count / 2].ToString(format, System.Globalization.CultureInfo.InvariantCulture)} [{sorted[0].ToString(format, System.Globalization.CultureInfo.InvariantCulture)}–{sorted[^1].ToString(format, System.Globalization.CultureInfo.InvariantCulture)}]");
    }

    /// <summary>The claim-ahead factor of the workers started now (an A/B round's), or null for the option's.</summary>
    private double? _claimAhead;

    /// <summary>
    /// (e)(ii) with each claim-ahead factor in turn, each beside a plain consume+ack run just before it, for
    /// several rounds in this one process and server: drift of a shared machine falls on every variant alike.
    /// </summary>
    private async Task ClaimAheadAbAsync(int m, EffectManifest effect, IEffectExecutor executor, CancellationToken cancellationToken)
    {
        var variants = _options.ClaimAheadAb;
        var rates = variants.Select(_ => new List<(double Plain, double Claim)>()).ToArray();
        _output.WriteLine(Text.Inv($"  claim-ahead A/B: {string.Join(" / ", variants)}, {_options.AbRounds} rounds of {m} commands; each (ii) after its own plain consume+ack"));
        try
        {
            for (var round = 0; round < _options.AbRounds; round++)
            {
                for (var v = 0; v < variants.Length; v++)
                {
                    // Alternate which variant goes first, so neither always follows the other.
                    var at = AbTurn(round, v, variants.Length);
                    _claimAhead = variants[at];
                    // Command ids of their own: a claim left by an earlier run would be answered from its stored result.
                    var offset = ((round * variants.Length) + v + 1) * m;
                    var (plainDone, plainSeconds) = await PlainRunAsync('p', m, offset, print: false, cancellationToken);
                    _output.Write(Text.Inv($"  round {round + 1}, claim ahead {variants[at]}: "));
                    var run = await ClaimRunAsync('c', m, offset, 1, effect, executor, print: true, cancellationToken);
                    rates[at].Add((plainDone / plainSeconds, run.Rate));
                }
            }
        }
        finally
        {
            _claimAhead = null;
        }
        for (var v = 0; v < variants.Length; v++)
        {
            _output.WriteLine(Text.Inv($"  claim ahead {variants[v]}: (ii) median {MedianRange(rates[v].Select(r => r.Claim), "F0")} commands/s, ratio to the plain run beside it median {MedianRange(rates[v].Select(r => r.Claim / r.Plain), "F3")}"));
        }
    }

    /// <summary>(i): the same commands through a durable pull consumer that only acks (as the baseline's consume).</summary>
    private Task<(int Done, double Seconds)> PlainRunAsync(char prefix, int count, int offset, bool print, CancellationToken cancellationToken) =>
        ConsumerRunAsync(prefix, count, offset, TimeSpan.FromSeconds(Math.Max(60, count / 500)), ConsumePlainAsync,
            print ? (done, seconds) => Text.Inv($"  (i)   plain consume+ack : {done}/{count} in {seconds:F3} s → {done / seconds,9:F0} commands/s  (durable pull consumer, pull batch {_options.Batch * 2}, read command_id, ack)") : null,
            cancellationToken);

    /// <summary>
    /// One run of a consumer that is not an effect worker: <paramref name="count"/> commands published
    /// first, then <paramref name="consume"/> until each is marked done (or <paramref name="limit"/>);
    /// with <paramref name="line"/>, its rate line and CPU per command printed.
    /// </summary>
    private async Task<(int Done, double Seconds)> ConsumerRunAsync(char prefix, int count, int offset, TimeSpan limit,
        Func<Timeline, CancellationToken, Task> consume, Func<int, double, string>? line, CancellationToken cancellationToken)
    {
        await PurgeAsync(_jetStream.Streams.WorkflowCommands, cancellationToken);
        var timeline = _timelines.Begin(prefix, count, 2, offset);
        await PublishAsync(timeline, count, i => Command(timeline, i), cancellationToken);
        var cpu = CpuSnapshot.Take(_natsPid);
        var t0 = _timelines.NowUs();
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            var consumer = consume(timeline, stop.Token);
            await WaitFinishedAsync(timeline, limit, cancellationToken);
            await stop.CancelAsync();
            await consumer;
        }
        var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        var end = timeline.FinishedCount == count ? timeline.LastFinishedUs : _timelines.NowUs();
        var seconds = (end - t0) / 1e6;
        if (line is not null)
        {
            _output.WriteLine(line(timeline.FinishedCount, seconds));
            cpuDelta.Print(_output, "        ", count, "command");
        }
        return (timeline.FinishedCount, seconds);
    }

    /// <summary>A durable pull consumer on the command subject that reads each command's id and acks it.</summary>
    private async Task ConsumePlainAsync(Timeline timeline, CancellationToken cancellationToken)
    {
        var stream = _jetStream.Streams.WorkflowCommands;
        var consumer = await Js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(PlainConsumer)
        {
            FilterSubject = CommandSubject,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _jetStream.AckWait,
            MaxAckPending = _jetStream.MaxAckPending,
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
        }, cancellationToken);
        try
        {
            var opts = new NatsJSConsumeOpts { MaxMsgs = _options.Batch * 2, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromSeconds(5) };
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: cancellationToken))
            {
                await msg.AckAsync(cancellationToken: cancellationToken);
                if (CommandId(msg.Data) is { } id)
                {
                    _timelines.Mark(id, Done);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopped
        }
        await Js.DeleteConsumerAsync(stream, PlainConsumer, CancellationToken.None);
    }

    /// <summary>(ii)/(iii): the commands through real effect workers, each its own process-like node with a distinct worker id.</summary>
    private async Task<ClaimRun> ClaimRunAsync(char prefix, int count, int offset, int workers, EffectManifest effect, IEffectExecutor executor, bool print, CancellationToken cancellationToken)
    {
        await PurgeAsync(_jetStream.Streams.WorkflowCommands, cancellationToken);
        var timeline = _timelines.Begin(prefix, count, 2, offset);
        await PublishAsync(timeline, count, i => Command(timeline, i), cancellationToken);
        // BENCH_ALLOC_TYPES=1: what the measured runs allocate, by type (sampled).
        using var types = print ? AllocTypes.StartIfAsked() : null;
        var cpu = CpuSnapshot.Take(_natsPid);
        var t0 = _timelines.NowUs();
        var nodes = await Task.WhenAll(Enumerable.Range(1, workers).Select(w => StartNodeAsync("bench-w" + Inv(w), effect, executor, cancellationToken)));
        bool complete;
        try
        {
            complete = await WaitFinishedAsync(timeline, TimeSpan.FromSeconds(Math.Max(60, count / 100)), cancellationToken);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
        var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        types?.On = false;
        var end = complete ? timeline.LastFinishedUs : _timelines.NowUs();
        var seconds = (end - t0) / 1e6;
        var run = new ClaimRun(workers, timeline.FinishedCount, seconds, timeline.FinishedCount / seconds,
            [.. nodes.Select(n => n.Executed)], nodes.Sum(n => n.Republished), complete);
        if (print)
        {
            var label = workers == 1 ? "(ii)  one effect worker " : "(iii) two effect workers";
            _output.WriteLine(Text.Inv($"  {label}: {run.Done}/{count} in {seconds:F3} s → {run.Rate,9:F0} commands/s  (executed per worker: {string.Join(" + ", run.PerWorker)}; re-published {run.Republished}; duplicates {timeline.Duplicates}){(complete ? string.Empty : "  (INCOMPLETE: timed out)")}"));
            cpuDelta.Print(_output, "        ", count, "command");
            types?.Print(_output);
        }
        return run;
    }

    /// <summary>The <c>command_id</c> of a command body (the first property the bench writes).</summary>
    private static string? CommandId(byte[]? data)
    {
        if (data is null)
        {
            return null;
        }
        var reader = new Utf8JsonReader(data);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("command_id"))
            {
                return reader.Read() ? reader.GetString() : null;
            }
        }
        return null;
    }
}
