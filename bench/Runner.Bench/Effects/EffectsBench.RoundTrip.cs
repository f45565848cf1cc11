using Microsoft.Extensions.DependencyInjection;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Effects.Resilience;
using Runner.Sagas;
using Runner.Sagas.Manifests;

namespace Runner.Bench.Effects;

internal sealed partial class EffectsBench
{
    public sealed record RoundTripResult(double Rate, int Done, int Expected, int Failed, Percentiles Loaded, Percentiles Idle, double UpstreamAloneRate, double UpstreamRate, int Concurrency)
    {
        /// <summary>(d')'s rate, the round trip's traffic alone, when it ran.</summary>
        public double? FloorRate { get; set; }
    }

    /// <summary>Sagas started one at a time before the burst, for the latency of an idle system.</summary>
    private const int RoundTripProbes = 100;

    /// <summary>The saga of (d), also run by <c>--cold</c>'s roundtrip mode.</summary>
    internal const string TripManifest = """
        kind: saga
        name: trip
        script: trip.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.trip.*.created"
            correlation: "subject[3]"
        """;

    /// <summary>One http command per start event; the result (routed back implicitly) finishes the instance.</summary>
    internal const string TripScript = """
        'use strict';
        function on_event(state, event, ctx) {
          if (event.type === 'trip.created') {
            if (state !== null) { return { state: state }; }
            return { state: { status: 'calling', n: event.data.n },
                     commands: [{ effect: 'trip.call', id: ctx.id('call'), payload: { n: event.data.n } }] };
          }
          if (state === null) { return { state: null }; }
          if (event.type === 'trip.call.succeeded') { return { state: { status: 'done', n: state.n }, done: true }; }
          if (event.type === 'trip.call.failed') { return { state: { status: 'failed', n: state.n, code: event.data.error.code }, done: true }; }
          return { state: state };
        }
        """;

    private string TripEffect => TripEffectYaml(Upstream.Url, _options.EffectConcurrency);

    /// <summary>(d)'s http effect, calling <paramref name="upstream"/>.</summary>
    internal static string TripEffectYaml(Uri upstream, int? concurrency) => $$"""
        kind: effect
        name: trip.call
        provider: http
        http: { url: "{{new Uri(upstream, "call")}}", method: POST }
        timeout_ms: 5000
        {{(concurrency is { } c ? "concurrency: " + Inv(c) : string.Empty)}}
        """;

    private static (string Subject, byte[] Data) StartEvent(Timeline timeline, int n)
    {
        var key = timeline.Id(n);
        return ($"aggregate.{Tenant}.trip.{key}.created",
            Utf8($$$"""{"specversion":"1.0","id":"trip-{{{key}}}","source":"bench","type":"trip.created","datacontenttype":"application/json","data":{"n":{{{Inv(n)}}}}}"""));
    }

    public async Task<RoundTripResult> RoundTripAsync(CancellationToken cancellationToken)
    {
        var n = _options.RoundTrips;

        // The upstream alone first, while the machine is quiet: it must not be what limits (d).
        var (selfCount, selfRate) = await Upstream.SelfTestAsync(Math.Clamp(n * 2, 2_000, 20_000), 64, TimeSpan.FromSeconds(10), cancellationToken);
        _output.WriteLine(Text.Inv($"  upstream alone: {selfCount} GETs from 64 concurrent loops of one HttpClient → {selfRate,9:F0} requests/s (Kestrel on 127.0.0.1, in this process)"));

        var manifests = Path.Combine(_dir.Path, "manifests");
        Directory.CreateDirectory(manifests);
        await File.WriteAllTextAsync(Path.Combine(manifests, "trip.yaml"), TripManifest, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifests, "trip.js"), TripScript, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifests, "effects.yaml"), TripEffect, cancellationToken);
        var loaded = ManifestLoader.Load(manifests, _jetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("round-trip manifests invalid: " + string.Join("; ", loaded.Errors));
        }
        var set = loaded.Set!;
        var concurrency = set.Effects.Single().Concurrency;

        // Saga replica and effect worker as two processes would be: a connection each, one LMDB store.
        await using var sagaConnection = new NatsConnection(new NatsOpts { Url = _url, Name = "bench-saga" });
        await sagaConnection.ConnectAsync();
        var sagaOptions = new SagaRuntimeOptions { Partitions = _options.Partitions, JetStream = _jetStream, ConsumerPrefix = ConsumerPrefix };
        await using var sagas = new SagaRuntime(new NatsJSContext(sagaConnection), Store, set, sagaOptions, _loggers, TimeProvider.System,
            listener: new RoundTripListener(_timelines));
        await using var services = EffectExecutor.AddHttpClient(new ServiceCollection()).BuildServiceProvider();
        var executor = EffectExecutor.Create(services.GetRequiredService<IHttpClientFactory>(), _dir.File("secrets"), _loggers, TimeProvider.System);
        await sagas.StartAsync(cancellationToken);
        await using var worker = await WorkerNode.StartAsync(_url, "bench-w1", set.Effects, executor, Quarantine, _jetStream, ConsumerPrefix, _options.EffectClaimAhead, _loggers, cancellationToken);
        Upstream.Arrived = key => _timelines.Mark(key, RoundTripListener.Called);
        _output.WriteLine(Text.Inv($"  runtime: saga 'trip' ({_options.Partitions} partitions, durable={_options.Durable}) + one effect worker, effect 'trip.call' (http POST, concurrency {concurrency}, manifest-default retry/breaker)"));

        // Warm-up in rounds, not measured, until a round leaves the JIT little to compile.
        var warm = Math.Min(1_000, n);
        var wireLine = string.Empty;
        for (var round = 0; round < 5; round++)
        {
            var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
            var timeline = _timelines.Begin('w', warm, RoundTripListener.Stages, round * warm);
            var started = _timelines.NowUs();
            bool finished;
            await using (var wire = await WireCounter.StartAsync(_connection!, cancellationToken))
            {
                await PublishAsync(timeline, warm, i => StartEvent(timeline, i), cancellationToken);
                finished = await WaitFinishedAsync(timeline, TimeSpan.FromSeconds(120), cancellationToken);
                await _connection!.PingAsync(cancellationToken);
                wireLine = wire.PerCommand(warm);
            }
            var took = (_timelines.NowUs() - started) / 1e6;
            var duringLoad = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
            var settled = await RunnerBench.SettleJitAsync(cancellationToken);
            _output.WriteLine(Text.Inv($"  warm-up round {round + 1}: {timeline.FinishedCount}/{warm} sagas done in {took:F2} s{(finished ? string.Empty : " (INCOMPLETE)")}; JIT compiled {duringLoad} methods under load ({settled:F1} s pause)"));
            if (round >= 1 && duringLoad < 300)
            {
                break;
            }
        }
        _output.WriteLine($"  on the wire per round trip (last warm-up round): {wireLine}");

        var probes = _timelines.Begin('s', RoundTripProbes, RoundTripListener.Stages);
        var idle = await ProbeAsync(probes, i => StartEvent(probes, i), cancellationToken);
        _output.WriteLine($"  idle, one saga at a time: start-event publish → done commit  {idle.Summary()}");
        PrintHops(probes, "    ");

        var track = _timelines.Begin('r', n, RoundTripListener.Stages);
        var commits0 = Store.Writer.Commits;
        var requests0 = Upstream.Requests;
        var executed0 = worker.Executed;
        // BENCH_ALLOC_TYPES=1: what the burst allocates, by type (sampled), the bench's publisher and upstream included.
        using var types = AllocTypes.StartIfAsked();
        var cpu = CpuSnapshot.Take(_natsPid);
        await PublishAsync(track, n, i => StartEvent(track, i), cancellationToken);
        var published = _timelines.NowUs();
        var complete = await WaitFinishedAsync(track, TimeSpan.FromSeconds(Math.Max(60, n / 50)), cancellationToken);
        var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        types?.On = false;
        var t0 = track.FirstPublishedUs;
        var end = complete ? track.LastFinishedUs : _timelines.NowUs();
        var seconds = (end - t0) / 1e6;
        var rate = track.FinishedCount / seconds;
        var requests = Upstream.Requests - requests0;
        var underLoad = track.Span(0, track.Last);
        Upstream.Arrived = null;

        _output.WriteLine(Text.Inv($"  burst  : {n} start events published in {(published - t0) / 1e6:F3} s ({_options.Window} in flight)"));
        _output.WriteLine(Text.Inv($"  result : {track.FinishedCount}/{n} sagas done ({track.Failed} by a failed effect) after {seconds:F3} s → {rate,9:F0} round trips/s{(complete ? string.Empty : "  (INCOMPLETE: timed out)")}"));
        _output.WriteLine(Text.Inv($"           upstream got {requests} requests → {requests / seconds:F0} requests/s; effect executions {worker.Executed - executed0}; LMDB commits {Store.Writer.Commits - commits0} ({2.0 * n / Math.Max(1, Store.Writer.Commits - commits0):F1} transitions/commit)"));
        if (track.Duplicates > 0)
        {
            _output.WriteLine(Text.Inv($"           duplicate marks: {track.Duplicates} (redelivered commits or repeated calls)"));
        }
        _output.WriteLine($"  under full load: start-event publish → done commit  {underLoad.Summary()}");
        PrintHops(track, "    ");
        cpuDelta.Print(_output, "  ", n, "round trip");
        types?.Print(_output);
        if (_options.ClaimAheadAb.Length > 1)
        {
            await worker.Runtime.DrainAsync(cancellationToken);
            await RoundTripAbAsync(n, set, executor, cancellationToken);
        }
        return new RoundTripResult(rate, track.FinishedCount, n, track.Failed, underLoad, idle, selfRate, requests / seconds, concurrency);
    }

    /// <summary>
    /// Bursts of (d) with a fresh effect worker of each claim-ahead factor in turn, for several rounds in this
    /// one process and server (the saga runtime stays up): drift of a shared machine falls on every variant alike.
    /// </summary>
    private async Task RoundTripAbAsync(int n, ManifestSet set, EffectExecutor executor, CancellationToken cancellationToken)
    {
        var variants = _options.ClaimAheadAb;
        var rates = variants.Select(_ => new List<double>()).ToArray();
        _output.WriteLine(Text.Inv($"  claim-ahead A/B: {string.Join(" / ", variants)}, {_options.AbRounds} rounds of {n} round trips"));
        var run = 0;
        for (var round = 0; round < _options.AbRounds; round++)
        {
            for (var v = 0; v < variants.Length; v++)
            {
                var at = AbTurn(round, v, variants.Length);
                await using var node = await WorkerNode.StartAsync(_url, "bench-ab", set.Effects, executor, Quarantine, _jetStream, ConsumerPrefix, variants[at], _loggers, cancellationToken);
                var track = _timelines.Begin('a', n, RoundTripListener.Stages, ++run * n);
                var cpu = CpuSnapshot.Take(_natsPid);
                await PublishAsync(track, n, i => StartEvent(track, i), cancellationToken);
                var complete = await WaitFinishedAsync(track, TimeSpan.FromSeconds(Math.Max(60, n / 50)), cancellationToken);
                var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
                var seconds = ((complete ? track.LastFinishedUs : _timelines.NowUs()) - track.FirstPublishedUs) / 1e6;
                var rate = track.FinishedCount / seconds;
                rates[at].Add(rate);
                _output.WriteLine(Text.Inv($"  round {round + 1}, claim ahead {variants[at]}: {track.FinishedCount}/{n} in {seconds:F3} s → {rate,7:F0} round trips/s; {1e6 * cpuDelta.Self / n:F0} / {1e6 * cpuDelta.Nats / n:F0} µs cpu per round trip (this process / nats-server){(complete ? string.Empty : "  (INCOMPLETE)")}"));
            }
        }
        for (var v = 0; v < variants.Length; v++)
        {
            _output.WriteLine(Text.Inv($"  claim ahead {variants[v]}: (d) median {MedianRange(rates[v], "F0")} round trips/s"));
        }
    }

    private void PrintHops(Timeline t, string indent)
    {
        _output.WriteLine($"{indent}publish → commit 1 (router, inbox, saga)                          {t.Span(RoundTripListener.Published, RoundTripListener.Started).Summary()}");
        _output.WriteLine($"{indent}commit 1 → upstream called (relay, command fetch, claim, HTTP)    {t.Span(RoundTripListener.Started, RoundTripListener.Called).Summary()}");
        _output.WriteLine($"{indent}upstream called → commit 2 (answer, claim done, result, router, inbox, saga) {t.Span(RoundTripListener.Called, RoundTripListener.Done).Summary()}");
    }
}
