using NATS.Client.Core;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    private sealed record Sample(long AtUs, int Published, long Routed, long Inbox, int Committed, long Relayed, int Commands);

    private async Task MonitorAsync(List<Sample> samples, PhaseTrack track, ulong aggregate0, ulong inbox0, long relayed0, CancellationToken cancellationToken)
    {
        var streams = RuntimeOptions.JetStream.Streams;
        var router = RouterConsumerOf(streams.AggregateEvents);
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
}
