using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Storage;
using Runner.Testing;

namespace Runner.Bench;

/// <summary>A saga runtime (real LMDB, durable by default) on the bench's nats-server, and the phases run through it.</summary>
internal sealed class RunnerBench : IAsyncDisposable
{
    public const string Manifest = """
        kind: saga
        name: bench
        script: bench.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.bench.*.>"
            correlation: "subject[3]"
        limits: { timeout_ms: 200, max_statements: 100000, memory_mb: 16, recursion: 64 }
        """;

    /// <summary>Folds a counter and emits one command per event, echoing the event's marker and publish time.</summary>
    public const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          const count = (state ? state.count : 0) + 1;
          return {
            state: { count: count },
            commands: [{ effect: 'bench.noted', id: ctx.id('noted'),
                         payload: { p: event.data.p, n: event.data.n, t: event.data.t, count: count } }],
          };
        }
        """;

    private readonly BenchOptions _options;
    private readonly TextWriter _output;
    private readonly int? _natsPid;
    private readonly List<NatsConnection> _connections = [];
    private readonly List<Task> _observers = [];
    private readonly CancellationTokenSource _stopObservers = new();
    private TempDirectory? _dir;
    private ILoggerFactory? _loggerFactory;
    private INatsJSContext? _runnerJs;
    private ManifestSet? _manifestSet;

    private RunnerBench(BenchOptions options, TextWriter output, int? natsPid, Tracker tracker, BenchLoggerProvider logs)
    {
        _options = options;
        _output = output;
        _natsPid = natsPid;
        Tracker = tracker;
        Logs = logs;
        RuntimeOptions = new SagaRuntimeOptions
        {
            Partitions = options.Partitions,
            JetStream = new JetStreamSettings { Batch = options.Batch },
            ConsumerPrefix = "bench",
        };
    }

    public Tracker Tracker { get; }
    public BenchLoggerProvider Logs { get; }
    public SagaRuntimeOptions RuntimeOptions { get; }
    public LmdbStore Store { get; private set; } = null!;
    public SagaRuntime Runtime { get; private set; } = null!;
    public INatsJSContext PublisherJs { get; private set; } = null!;
    public INatsJSContext ObserverJs { get; private set; } = null!;
    private NatsConnection Observer { get; set; } = null!;

    public static async Task<RunnerBench> StartAsync(string url, BenchOptions options, Tracker tracker, int? natsPid, TextWriter output, CancellationToken cancellationToken)
    {
        var logs = new BenchLoggerProvider();
        var bench = new RunnerBench(options, output, natsPid, tracker, logs);
        try
        {
            await bench.InitAsync(url, cancellationToken);
        }
        catch
        {
            await bench.DisposeAsync();
            throw;
        }
        return bench;
    }

    private async Task InitAsync(string url, CancellationToken cancellationToken)
    {
        // Three connections, as in production: producers, the runner, and an effect-worker-like observer.
        var publisher = await ConnectAsync(url, "bench-publisher", cancellationToken);
        var runner = await ConnectAsync(url, "bench-runner", cancellationToken);
        Observer = await ConnectAsync(url, "bench-observer", cancellationToken);
        PublisherJs = new NatsJSContext(publisher);
        ObserverJs = new NatsJSContext(Observer);

        foreach (var config in StreamTopology.Configs(RuntimeOptions.JetStream))
        {
            await Baseline.DeleteStreamAsync(PublisherJs, config.Name!, cancellationToken);
        }

        _dir = new TempDirectory("runner-bench");
        var manifestDir = _dir.File("manifests");
        Directory.CreateDirectory(manifestDir);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.yaml"), Manifest, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.js"), Script, cancellationToken);
        var loaded = ManifestLoader.Load(manifestDir, RuntimeOptions.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("bench manifest invalid: " + string.Join("; ", loaded.Errors));
        }

        _loggerFactory = new LoggerFactory([Logs], new LoggerFilterOptions { MinLevel = LogLevel.Trace });
        Store = new LmdbStore(new LmdbOptions { Path = _dir.File("lmdb"), Durable = _options.Durable }, _loggerFactory.CreateLogger<LmdbStore>());
        _runnerJs = new NatsJSContext(runner);
        _manifestSet = loaded.Set!;
        Runtime = new SagaRuntime(_runnerJs, Store, _manifestSet, RuntimeOptions, _loggerFactory, TimeProvider.System, listener: Tracker);

        // Count commands as an effect worker would see them (core subscription, no JetStream consumer).
        var commands = await Observer.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
        _observers.Add(ObserveAsync(commands, "payload", command: true, _stopObservers.Token));
        await Observer.PingAsync(cancellationToken);

        await Runtime.StartAsync(cancellationToken);
    }

    private async Task<NatsConnection> ConnectAsync(string url, string name, CancellationToken cancellationToken)
    {
        var connection = new NatsConnection(new NatsOpts
        {
            Url = url,
            Name = name,
            SubPendingChannelCapacity = 1 << 18,
            SubPendingChannelFullMode = BoundedChannelFullMode.Wait,
        });
        _connections.Add(connection);
        await connection.ConnectAsync();
        cancellationToken.ThrowIfCancellationRequested();
        return connection;
    }

    private async Task ObserveAsync(INatsSub<byte[]> subscription, string container, bool command, CancellationToken cancellationToken)
    {
        await using (subscription)
        {
            try
            {
                await foreach (var msg in subscription.Msgs.ReadAllAsync(cancellationToken))
                {
                    if (msg.Data is { } data)
                    {
                        Tracker.Observe(data, container, command);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }
    }

    /// <summary>Events through the runtime that are not measured: JIT, sandboxes, consumers, LMDB pages.</summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        if (_options.Warmup == 0)
        {
            return;
        }

        // Rounds of load, each followed by a pause: the tiered JIT promotes hot methods only after a
        // quiet period, so one long burst leaves most of its tier-1 work to the measured phase.
        // Stop when a round compiles few new methods (at most 5 rounds).
        var perRound = Math.Max(1, _options.Warmup / 2);
        for (var round = 1; round <= 5; round++)
        {
            var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
            var phase = Tracker.WarmupPhase + round; // distinct event ids per round (the runtime dedupes by id)
            var track = Tracker.Begin(phase, perRound);
            var started = Stopwatch.GetTimestamp();
            await Publisher.PipelinedAsync(PublisherJs, track.Count, _options.Window, i => (Wire.Subject(i % _options.Keys), Wire.Event(phase, i, Tracker.NowUs())), null, cancellationToken);
            var done = await WaitAsync(() => track.Commands >= track.Count, TimeSpan.FromSeconds(120), cancellationToken);
            var loadSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var duringLoad = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
            await WaitForIdleAsync(cancellationToken);
            var settled = await SettleJitAsync(cancellationToken);
            var total = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
            _output.WriteLine(Text.Inv($"  warm-up round {round}: {track.Commands}/{track.Count} commands in {loadSeconds:F2} s ({track.Count / loadSeconds:F0}/s){(done ? string.Empty : " (INCOMPLETE)")}; JIT compiled {duringLoad} methods under load, {total} with the pause ({settled:F1} s)"));
            if (round >= 2 && duringLoad < 300)
            {
                break;
            }
        }
        await PrintRouterConsumerAsync("after warm-up", cancellationToken);
    }

    /// <summary>Waits (at most 15 s) until the JIT compiles fewer than 10 methods in half a second.</summary>
    private static async Task<double> SettleJitAsync(CancellationToken cancellationToken)
    {
        var settle = Stopwatch.GetTimestamp();
        var methods = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (var i = 0; i < 30; i++)
        {
            await Task.Delay(500, cancellationToken);
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            var delta = now - methods;
            methods = now;
            if (delta < 10)
            {
                break;
            }
        }
        return Stopwatch.GetElapsedTime(settle).TotalSeconds;
    }

    public sealed record ThroughputResult(double Rate, double PublishRate, double Seconds, int Commands, int Errors);

    public async Task<ThroughputResult> ThroughputAsync(CancellationToken cancellationToken)
    {
        var n = _options.Events;
        var track = Tracker.Begin(1, n);
        var commits0 = Store.Writer.Commits;
        var batches0 = Store.Writer.Batches;
        var relayed0 = Runtime.Relay.Published;
        var aggregate0 = await LastSeqAsync(RuntimeOptions.JetStream.Streams.AggregateEvents, cancellationToken);
        var inbox0 = await LastSeqAsync(RuntimeOptions.JetStream.Streams.Inbox, cancellationToken);
        var cpu = CpuSnapshot.Take(_natsPid);
        Logs.Commits.Start();
        using var jitLog = _options.JitLog ? new JitLog() : null;
        jitLog?.Start();

        using var monitorStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var samples = new List<Sample>();
        var monitor = MonitorAsync(samples, track, aggregate0, inbox0, relayed0, monitorStop.Token);

        var t0 = Tracker.NowUs();
        var errors = await Publisher.PipelinedAsync(PublisherJs, n, _options.Window, i =>
        {
            var now = Tracker.NowUs();
            track.Published[i] = now;
            return (Wire.Subject(i % _options.Keys), Wire.Event(1, i, now));
        }, i => track.Ack(i, Tracker.NowUs()), cancellationToken);
        var published = Tracker.NowUs();

        var limit = TimeSpan.FromSeconds(Math.Max(60, n / 500));
        var complete = await WaitAsync(() => track.Commands >= n, limit, cancellationToken);
        var end = complete ? track.LastCommandUs : Tracker.NowUs();
        await monitorStop.CancelAsync();
        await monitor;
        var commits = Logs.Commits.Stop();
        var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        var jitted = jitLog?.Stop();

        var seconds = (end - t0) / 1e6;
        var rate = track.Commands / seconds;
        var publishRate = n / ((published - t0) / 1e6);
        _output.WriteLine(Text.Inv($"  publish : {n} events to {_options.Keys} keys, {_options.Window} in flight: all PubAcks after {(published - t0) / 1e6:F3} s → {publishRate:F0} events/s ({errors} errors)"));
        _output.WriteLine(Text.Inv($"  result  : {track.Commands}/{n} commands on WORKFLOW_COMMANDS after {seconds:F3} s → {rate,9:F0} events/s end to end{(complete ? string.Empty : "  (INCOMPLETE: timed out)")}"));
        if (track.DuplicateCommands > 0 || track.DuplicateCommits > 0)
        {
            _output.WriteLine(Text.Inv($"            duplicates: {track.DuplicateCommands} commands, {track.DuplicateCommits} commits (redeliveries)"));
        }
        PrintStages(samples, n, t0);
        PrintLmdb(Store.Writer.Commits - commits0, Store.Writer.Batches - batches0, commits, n);
        var lat = new Percentiles(PhaseTrack.Span(track.Published, track.Commanded));
        _output.WriteLine($"  per-event publish→command under full load: {lat.Summary()}");
        cpuDelta.Print(_output, "  ", n);
        _output.WriteLine(Text.Inv($"  Jint sandboxes created so far: {SandboxesCreated}"));
        if (jitted is not null)
        {
            _output.WriteLine(Text.Inv($"  JIT log: {jitted.Sum(m => m.Value)} method loads, {jitted.Count} distinct; top:"));
            foreach (var (flags, count) in jitted.GroupBy(m => m.Key[m.Key.LastIndexOf('[')..]).Select(g => (g.Key, g.Sum(m => m.Value))).OrderByDescending(g => g.Item2).Take(12))
            {
                _output.WriteLine(Text.Inv($"    by tier/flags {count,6} {flags}"));
            }
            foreach (var (method, count) in jitted.Take(40))
            {
                _output.WriteLine(Text.Inv($"    {count,6} {method}"));
            }
            foreach (var (ns, count) in jitted.GroupBy(m => m.Key.Split("::")[0].Split('.').Take(3).Aggregate((a, b) => a + "." + b)).Select(g => (g.Key, g.Sum(m => m.Value))).OrderByDescending(g => g.Item2).Take(15))
            {
                _output.WriteLine(Text.Inv($"    by namespace {count,6} {ns}"));
            }
        }
        await WaitForIdleAsync(cancellationToken);
        return new ThroughputResult(rate, publishRate, seconds, track.Commands, errors);
    }

    public sealed record LatencyResult(Percentiles EndToEnd, double AchievedRate, int Commands, int Expected);

    public async Task<LatencyResult> LatencyAsync(CancellationToken cancellationToken)
    {
        var total = (int)Math.Min((long)_options.Rate * _options.Seconds, 1_000_000);
        var track = Tracker.Begin(2, total);
        var commits0 = Store.Writer.Commits;
        var batches0 = Store.Writer.Batches;
        var cpu = CpuSnapshot.Take(_natsPid);
        Logs.Commits.Start();

        // At this rate it is cheap to also watch the inbox hop, which splits router from saga worker.
        using var inboxStop = CancellationTokenSource.CreateLinkedTokenSource(_stopObservers.Token);
        var inbox = await Observer.SubscribeCoreAsync<byte[]>(Core.Subjects.Subjects.InboxPrefix + ".>", cancellationToken: cancellationToken);
        var inboxTask = ObserveAsync(inbox, "data", command: false, inboxStop.Token);
        await Observer.PingAsync(cancellationToken);

        var acks = Channel.CreateUnbounded<(int, NatsJSPublishConcurrentFuture)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var acker = Task.Run(async () =>
        {
            var errors = 0;
            await foreach (var item in acks.Reader.ReadAllAsync(cancellationToken))
            {
                errors += await Publisher.CompleteAsync(item, i => track.Ack(i, Tracker.NowUs()), cancellationToken);
            }
            return errors;
        }, cancellationToken);

        var interval = Stopwatch.Frequency / (double)_options.Rate;
        var start = Stopwatch.GetTimestamp();
        var deadline = start + (long)(Stopwatch.Frequency * (_options.Seconds + 5.0));
        var sent = 0;
        for (; sent < total; sent++)
        {
            var due = start + (long)(sent * interval);
            var now = Stopwatch.GetTimestamp();
            if (now > deadline)
            {
                break;
            }
            if (due - now > Stopwatch.Frequency / 1000)
            {
                await Task.Delay(Stopwatch.GetElapsedTime(now, due), cancellationToken);
            }
            var t = Tracker.NowUs();
            track.Published[sent] = t;
            var future = await PublisherJs.PublishConcurrentAsync(Wire.Subject(sent % _options.Keys), Wire.Event(2, sent, t), cancellationToken: cancellationToken);
            await acks.Writer.WriteAsync((sent, future), cancellationToken);
        }
        acks.Writer.Complete();
        var pacedSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var publishErrors = await acker;
        var complete = await WaitAsync(() => track.Commands >= sent, TimeSpan.FromSeconds(60), cancellationToken);
        await inboxStop.CancelAsync();
        await inboxTask;
        var commits = Logs.Commits.Stop();
        var cpuDelta = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));

        var achieved = sent / pacedSeconds;
        _output.WriteLine(Text.Inv($"  paced   : {sent} events at {achieved:F0}/s (target {_options.Rate}/s) over {pacedSeconds:F2} s, {publishErrors} publish errors; {track.Commands}/{sent} commands{(complete ? string.Empty : " (INCOMPLETE)")}"));
        var endToEnd = new Percentiles(track.EndToEnd.Where(v => v >= 0));
        _output.WriteLine($"  publish→command (t read back from payload): {endToEnd.Summary()}");
        _output.WriteLine("  breakdown (each from the publish time):");
        _output.WriteLine($"    → PubAck       {new Percentiles(PhaseTrack.Span(track.Published, track.PubAcked)).Summary()}");
        _output.WriteLine($"    → inbox        {new Percentiles(PhaseTrack.Span(track.Published, track.Inbox)).Summary()}");
        _output.WriteLine($"    → committed    {new Percentiles(PhaseTrack.Span(track.Published, track.Committed)).Summary()}");
        _output.WriteLine("  per hop:");
        _output.WriteLine($"    router  (publish→inbox)      {new Percentiles(PhaseTrack.Span(track.Published, track.Inbox)).Summary()}");
        _output.WriteLine($"    worker  (inbox→committed)    {new Percentiles(PhaseTrack.Span(track.Inbox, track.Committed)).Summary()}");
        _output.WriteLine($"    relay   (committed→command)  {new Percentiles(PhaseTrack.Span(track.Committed, track.Commanded)).Summary()}");
        PrintLmdb(Store.Writer.Commits - commits0, Store.Writer.Batches - batches0, commits, sent);
        cpuDelta.Print(_output, "  ", sent);
        return new LatencyResult(endToEnd, achieved, track.Commands, sent);
    }

    /// <summary>
    /// Diagnostic (--isolate): the router alone (a runtime that owns no partition), then the
    /// partition workers and relay alone on the inbox the router filled. Each stage gets the machine.
    /// </summary>
    public async Task IsolateAsync(CancellationToken cancellationToken)
    {
        var n = _options.Events;
        var streams = RuntimeOptions.JetStream.Streams;
        await Runtime.StopAsync();
        var track = Tracker.Begin(3, n);
        var inbox0 = await LastSeqAsync(streams.Inbox, cancellationToken);

        // Publish first, then route: the router runs alone on a full stream.
        var errors = await Publisher.PipelinedAsync(PublisherJs, n, _options.Window, i => (Wire.Subject(i % _options.Keys), Wire.Event(3, i, Tracker.NowUs())), null, cancellationToken);
        var cpu = CpuSnapshot.Take(_natsPid);
        var started = Stopwatch.GetTimestamp();
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, new NoPartitions(), Tracker);
        await Runtime.StartAsync(cancellationToken);
        var routed = await WaitAsync(async () => await LastSeqAsync(streams.Inbox, cancellationToken) - inbox0 >= (ulong)n, TimeSpan.FromSeconds(120), cancellationToken);
        var routerSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var routerCpu = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        _output.WriteLine(Text.Inv($"  router alone   : {n} events (pre-published, {errors} errors) routed to the inbox in {routerSeconds:F3} s → {n / routerSeconds,8:F0} events/s{(routed ? string.Empty : " (INCOMPLETE)")}"));
        routerCpu.Print(_output, "                   ", n);
        await Runtime.StopAsync();

        // Now the workers and the relay on the full inbox (the router has nothing left to do).
        var commits0 = Store.Writer.Commits;
        var batches0 = Store.Writer.Batches;
        Logs.Commits.Start();
        cpu = CpuSnapshot.Take(_natsPid);
        var t0 = Tracker.NowUs();
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, listener: Tracker);
        await Runtime.StartAsync(cancellationToken);
        var done = await WaitAsync(() => track.Commands >= n, TimeSpan.FromSeconds(120), cancellationToken);
        var commits = Logs.Commits.Stop();
        var workerCpu = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        var committedSeconds = (track.LastCommitUs - t0) / 1e6;
        var commandSeconds = ((done ? track.LastCommandUs : Tracker.NowUs()) - t0) / 1e6;
        _output.WriteLine(Text.Inv($"  workers+relay  : all {track.Commits} committed after {committedSeconds:F3} s → {track.Commits / committedSeconds,8:F0} events/s; {track.Commands} commands after {commandSeconds:F3} s → {track.Commands / commandSeconds,8:F0} events/s{(done ? string.Empty : " (INCOMPLETE)")}"));
        PrintLmdb(Store.Writer.Commits - commits0, Store.Writer.Batches - batches0, commits, n);
        workerCpu.Print(_output, "                   ", n);
        await WaitForIdleAsync(cancellationToken);

        // The relay alone: committed outbox items written straight to LMDB (as a crash would leave
        // them), then a runtime whose router and workers have nothing to do. Scan path, not the fast path.
        await Runtime.StopAsync();
        var relayTrack = Tracker.Begin(5, n);
        for (var start = 0; start < n; start += 1_000)
        {
            var batch = new WriteBatch();
            for (var i = start; i < Math.Min(n, start + 1_000); i++)
            {
                var command = new Core.Transitions.CommandMessage
                {
                    CommandId = "relay-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Tenant = Wire.Tenant,
                    Effect = "bench.noted",
                    Saga = Wire.Saga,
                    CorrelationId = "k" + (i % _options.Keys).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    CausationId = "relay",
                    Payload = System.Text.Json.JsonDocument.Parse(Text.Inv($$"""{"p":5,"n":{{i}},"t":0}""")).RootElement.Clone(),
                    CreatedAt = Core.Events.CloudEventEncoder.FormatTime(DateTimeOffset.UnixEpoch),
                };
                batch.Put(KeySpace.Outbox, StoreKeys.Outbox(new Core.Ids.PartitionId(i % RuntimeOptions.Partitions), (ulong)i + 1, 0),
                    System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(command, Core.CoreJsonContext.Default.CommandMessage));
            }
            await Store.Writer.CommitAsync(batch, cancellationToken);
        }
        commits0 = Store.Writer.Commits;
        batches0 = Store.Writer.Batches;
        Logs.Commits.Start();
        cpu = CpuSnapshot.Take(_natsPid);
        t0 = Tracker.NowUs();
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, new NoPartitions(), Tracker);
        await Runtime.StartAsync(cancellationToken);
        var relayed = await WaitAsync(() => relayTrack.Commands >= n, TimeSpan.FromSeconds(120), cancellationToken);
        var relaySeconds = ((relayed ? relayTrack.LastCommandUs : Tracker.NowUs()) - t0) / 1e6;
        var emptied = await WaitAsync(() => Store.Read(r => r.Count(KeySpace.Outbox)) == 0, TimeSpan.FromSeconds(30), cancellationToken);
        var relayCommits = Logs.Commits.Stop();
        var relayCpu = new CpuDelta(cpu, CpuSnapshot.Take(_natsPid));
        _output.WriteLine(Text.Inv($"  relay alone    : {relayTrack.Commands} of {n} outbox items published after {relaySeconds:F3} s → {relayTrack.Commands / relaySeconds,8:F0} commands/s; outbox {(emptied ? "emptied" : "NOT emptied")}"));
        PrintLmdb(Store.Writer.Commits - commits0, Store.Writer.Batches - batches0, relayCommits, n);
        relayCpu.Print(_output, "                   ", n);
        await Runtime.StopAsync();
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, listener: Tracker);
        await Runtime.StartAsync(cancellationToken);
    }

    /// <summary>
    /// Diagnostic (--check-duplicates): what happens when a publish that may be retried meets the
    /// server's duplicate window — (1) the router consumer is re-created and redelivers events whose
    /// inbox copies exist; (2) the relay publishes an outbox item whose command is already on
    /// WORKFLOW_COMMANDS (a crash between PubAck and the delete). Both should count as success.
    /// </summary>
    public async Task CheckDuplicatesAsync(CancellationToken cancellationToken)
    {
        var streams = RuntimeOptions.JetStream.Streams;
        var routerName = RuntimeOptions.RouterConsumer(streams.AggregateEvents);

        // (1) Router: lose the router consumer, so it starts again from the first event.
        var quarantined0 = Quarantined;
        var aggregate = await LastSeqAsync(streams.AggregateEvents, cancellationToken);
        var inboxBefore = await LastSeqAsync(streams.Inbox, cancellationToken);
        await Runtime.StopAsync();
        await ObserverJs.DeleteConsumerAsync(streams.AggregateEvents, routerName, cancellationToken);
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, listener: Tracker);
        await Runtime.StartAsync(cancellationToken);
        var drained = await WaitAsync(async () =>
        {
            try
            {
                var c = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, routerName, cancellationToken);
                return c.Info.NumPending == 0 && c.Info.NumAckPending == 0 && c.Info.AckFloor.StreamSeq >= aggregate;
            }
            catch (NatsJSApiException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(45), cancellationToken);
        var consumer = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, routerName, cancellationToken);
        _output.WriteLine(Text.Inv($"  router, consumer re-created over {aggregate} already-routed events: {(drained ? "drained" : "NOT drained after 45 s")}; redelivered {consumer.Info.NumRedelivered}, ack pending {consumer.Info.NumAckPending}; new quarantine records: {Quarantined - quarantined0}; RUNNER_INBOX grew by {await LastSeqAsync(streams.Inbox, cancellationToken) - inboxBefore}"));

        // (2) Relay: a command already on WORKFLOW_COMMANDS, and its outbox item still in LMDB.
        await Runtime.StopAsync();
        var command = new Core.Transitions.CommandMessage
        {
            CommandId = "bench-duplicate-" + Guid.NewGuid().ToString("N")[..8],
            Tenant = Wire.Tenant,
            Effect = "bench.noted",
            Saga = Wire.Saga,
            CorrelationId = "k0",
            CausationId = "check",
            Payload = System.Text.Json.JsonDocument.Parse("{\"p\":7,\"n\":0,\"t\":0}").RootElement.Clone(),
            CreatedAt = Core.Events.CloudEventEncoder.FormatTime(DateTimeOffset.UnixEpoch),
        };
        var first = await PublisherJs.PublishAsync(Core.Subjects.Subjects.Command(command.Tenant, command.Effect, null), Runner.Sagas.Outbox.OutboxRelay.CommandBody(command),
            opts: new NatsJSPubOpts { MsgId = command.CommandId }, cancellationToken: cancellationToken);
        first.EnsureSuccess();
        var again = await PublisherJs.PublishAsync(Core.Subjects.Subjects.Command(command.Tenant, command.Effect, null), Runner.Sagas.Outbox.OutboxRelay.CommandBody(command),
            opts: new NatsJSPubOpts { MsgId = command.CommandId }, cancellationToken: cancellationToken);
        var commandsBefore = await LastSeqAsync(streams.WorkflowCommands, cancellationToken);
        await using (var future = await PublisherJs.PublishConcurrentAsync(Core.Subjects.Subjects.Command(command.Tenant, command.Effect, null), Runner.Sagas.Outbox.OutboxRelay.CommandBody(command),
            opts: new NatsJSPubOpts { MsgId = command.CommandId }, cancellationToken: cancellationToken))
        {
            var third = await future.GetResponseAsync(cancellationToken);
            string verdict;
            try
            {
                third.EnsureSuccess();
                verdict = "EnsureSuccess passed";
            }
            catch (NatsException ex)
            {
                verdict = "EnsureSuccess threw " + ex.GetType().Name + ": " + ex.Message;
            }
            _output.WriteLine(Text.Inv($"  same command via PublishConcurrentAsync: seq {third.Seq} duplicate={third.Duplicate}; {verdict}"));
        }
        _output.WriteLine(Text.Inv($"  same command published twice by the bench: first seq {first.Seq}, second seq {again.Seq} duplicate={again.Duplicate}"));
        var batch = new WriteBatch();
        batch.Put(KeySpace.Outbox, StoreKeys.Outbox(new Core.Ids.PartitionId(0), ulong.MaxValue - 1, 0),
            System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(command, Core.CoreJsonContext.Default.CommandMessage));
        await Store.Writer.CommitAsync(batch, cancellationToken);
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, listener: Tracker);
        await Runtime.StartAsync(cancellationToken);
        var deleted = await WaitAsync(() => Store.Read(r => r.Count(KeySpace.Outbox)) == 0, TimeSpan.FromSeconds(15), cancellationToken);
        _output.WriteLine(Text.Inv($"  relay, outbox item whose command was already published: {(deleted ? "deleted" : "STILL in the outbox after 15 s")}; relay published count {Runtime.Relay.Published}; WORKFLOW_COMMANDS grew by {await LastSeqAsync(streams.WorkflowCommands, cancellationToken) - commandsBefore}"));

        // And is the relay still moving? One more event through the pipeline.
        var track = Tracker.Begin(4, 1);
        await PublisherJs.PublishAsync(Wire.Subject(0), Wire.Event(4, 0, Tracker.NowUs()), cancellationToken: cancellationToken);
        var t0 = Tracker.NowUs();
        var through = await WaitAsync(() => track.Commands >= 1, TimeSpan.FromSeconds(15), cancellationToken);
        _output.WriteLine(Text.Inv($"  one new event afterwards: command {(through ? Text.Inv($"arrived after {(track.LastCommandUs - t0) / 1000.0:F0} ms") : "did NOT arrive within 15 s")}"));
    }

    private sealed class NoPartitions : Runner.Sagas.Partitions.IPartitionOwnership
    {
        public async IAsyncEnumerable<(Core.Ids.PartitionId Partition, CancellationToken Owned)> AcquireAsync(
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield break;
        }
    }

    public long Quarantined => Store.Read(r => r.Count(KeySpace.Quarantine));

    /// <summary>The router consumer's server-side state: where acks stand and what was redelivered.</summary>
    public async Task PrintRouterConsumerAsync(string when, CancellationToken cancellationToken)
    {
        var streams = RuntimeOptions.JetStream.Streams;
        try
        {
            var consumer = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, RuntimeOptions.RouterConsumer(streams.AggregateEvents), cancellationToken);
            var info = consumer.Info;
            _output.WriteLine(Text.Inv($"  router consumer {when}: delivered {info.Delivered.StreamSeq}, ack floor {info.AckFloor.StreamSeq}, ack pending {info.NumAckPending}, redelivered {info.NumRedelivered}, pending {info.NumPending}; quarantine records {Quarantined}"));
        }
        catch (NatsJSApiException ex)
        {
            _output.WriteLine($"  router consumer {when}: {ex.Error.Description}");
        }
    }

    /// <summary>Jint sandboxes created for the bench saga so far (each one is a full engine set-up).</summary>
    public long SandboxesCreated => Runtime.Manifests.Saga(Wire.Saga)?.Script.Pool.Created ?? -1;

    private void PrintLmdb(long commits, long batches, List<(int Batches, double Ms)> log, int events)
    {
        var perCommit = commits == 0 ? 0 : batches / (double)commits;
        _output.WriteLine(Text.Inv($"  LMDB    : {commits} durable commits for {batches} write batches → {perCommit:F2} batches/commit, {events / (double)Math.Max(commits, 1):F1} events/commit (durable={_options.Durable})"));
        if (log.Count > 0)
        {
            var ms = new Percentiles(log.Select(e => (long)(e.Ms * 1000)));
            var busy = log.Sum(e => e.Ms);
            _output.WriteLine(Text.Inv($"            commit time (apply+fsync): {ms.Summary()}; writer thread busy {busy / 1000:F2} s in total"));
            var sizes = new Percentiles(log.Select(e => (long)e.Batches * 1000));
            _output.WriteLine(Text.Inv($"            batches per commit: p50 {sizes.Ms(50):F0}  p90 {sizes.Ms(90):F0}  max {sizes.MaxMs:F0}"));
        }
    }

    private sealed record Sample(long AtUs, int Published, long Routed, long Inbox, int Committed, long Relayed, int Commands);

    private async Task MonitorAsync(List<Sample> samples, PhaseTrack track, ulong aggregate0, ulong inbox0, long relayed0, CancellationToken cancellationToken)
    {
        var streams = RuntimeOptions.JetStream.Streams;
        var router = RuntimeOptions.RouterConsumer(streams.AggregateEvents);
        for (var i = 0; i < 100_000 && !cancellationToken.IsCancellationRequested; i++)
        {
            try
            {
                var consumer = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, router, cancellationToken);
                var routed = (long)consumer.Info.AckFloor.StreamSeq - (long)aggregate0;
                var inbox = (long)await LastSeqAsync(streams.Inbox, cancellationToken) - (long)inbox0;
                samples.Add(new Sample(Tracker.NowUs(), track.Acks, routed, inbox, track.Commits, Runtime.Relay.Published - relayed0, track.Commands));
                await Task.Delay(200, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (NatsException)
            {
                // a slow API reply under load: skip this sample
            }
        }
        samples.Add(new Sample(Tracker.NowUs(), track.Acks, samples.LastOrDefault()?.Routed ?? 0, samples.LastOrDefault()?.Inbox ?? 0, track.Commits, Runtime.Relay.Published - relayed0, track.Commands));
    }

    private void PrintStages(List<Sample> samples, int n, long t0)
    {
        if (samples.Count == 0)
        {
            return;
        }
        _output.WriteLine("  stage progress (counts since the phase began; router = ack floor of the router consumer):");
        _output.WriteLine("      t(s)  pubacked    routed  in inbox committed   relayed  commands");
        var step = Math.Max(1, samples.Count / 16);
        for (var i = 0; i < samples.Count; i++)
        {
            if (i % step != 0 && i != samples.Count - 1)
            {
                continue;
            }
            var s = samples[i];
            _output.WriteLine(Text.Inv($"    {(s.AtUs - t0) / 1e6,6:F2} {s.Published,9} {s.Routed,9} {s.Inbox,9} {s.Committed,9} {s.Relayed,9} {s.Commands,9}"));
        }
        string Done(Func<Sample, long> value)
        {
            var first = samples.FirstOrDefault(s => value(s) >= n);
            return first is null ? "   n/a" : Text.Inv($"{(first.AtUs - t0) / 1e6,6:F2}");
        }
        _output.WriteLine($"    all {n} reached at (s, 200 ms resolution): pubacked {Done(s => s.Published)}, routed {Done(s => s.Routed)}, inbox {Done(s => s.Inbox)}, committed {Done(s => s.Committed)}, relayed {Done(s => s.Relayed)}, commands {Done(s => s.Commands)}");
    }

    private async Task<ulong> LastSeqAsync(string stream, CancellationToken cancellationToken)
    {
        var info = await ObserverJs.GetStreamAsync(stream, cancellationToken: cancellationToken);
        return info.Info.State.LastSeq;
    }

    /// <summary>Outbox drained (every committed command published and deleted).</summary>
    private async Task WaitForIdleAsync(CancellationToken cancellationToken) =>
        await WaitAsync(() => Store.Read(r => r.Count(KeySpace.Outbox)) == 0, TimeSpan.FromSeconds(30), cancellationToken);

    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!await condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }
            await Task.Delay(5, cancellationToken);
        }
        return true;
    }

    private static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }
            await Task.Delay(5, cancellationToken);
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopObservers.CancelAsync();
        if (Runtime is not null)
        {
            await Runtime.StopAsync();
        }
        try
        {
            await Task.WhenAll(_observers);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        Store?.Dispose();
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
        _loggerFactory?.Dispose();
        _dir?.Dispose();
        _stopObservers.Dispose();
    }
}
