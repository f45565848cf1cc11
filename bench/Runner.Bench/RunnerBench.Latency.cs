using System.Diagnostics;
using System.Threading.Channels;
using NATS.Client.JetStream;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
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
}
