using System.Diagnostics;
using Runner.Core.Keys;
using Runner.Sagas;
using Runner.Storage;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
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
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions with { TakePartitions = false }, _loggerFactory!, TimeProvider.System, Tracker);
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
        Runtime = new SagaRuntime(_runnerJs!, Store, _manifestSet!, RuntimeOptions, _loggerFactory!, TimeProvider.System, Tracker);
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
}
