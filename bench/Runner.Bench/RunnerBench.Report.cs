using NATS.Client.JetStream;
using Runner.Core.Keys;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    public long Quarantined => Store.Read(r => r.Count(KeySpace.Quarantine));

    /// <summary>The consumer the runtime's router of <paramref name="stream"/> reads now (its lease epoch's).</summary>
    private string RouterConsumerOf(string stream) =>
        Runtime.RouterConsumers.FirstOrDefault(r => r.Stream == stream).Consumer ?? RuntimeOptions.RouterConsumer(stream);

    /// <summary>The router consumer's server-side state: where acks stand and what was redelivered.</summary>
    public async Task PrintRouterConsumerAsync(string when, CancellationToken cancellationToken)
    {
        var streams = RuntimeOptions.JetStream.Streams;
        try
        {
            var consumer = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, RouterConsumerOf(streams.AggregateEvents), cancellationToken);
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

    private async Task<ulong> LastSeqAsync(string stream, CancellationToken cancellationToken)
    {
        var info = await ObserverJs.GetStreamAsync(stream, cancellationToken: cancellationToken);
        return info.Info.State.LastSeq;
    }
}
