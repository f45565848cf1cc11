using System.Diagnostics;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;

namespace Runner.Bench;

/// <summary>What raw JetStream does on the same server with the same payload: pipelined publish, and consume + ack.</summary>
internal sealed record BaselineResult(double PublishRate, double ConsumeRate, int PayloadBytes, int Errors);

internal static class Baseline
{
    public const string Stream = "BENCH_RAW";
    private const string Prefix = "bench.raw";

    public static async Task<BaselineResult> RunAsync(INatsJSContext js, BenchOptions options, Tracker tracker, int? natsPid, TextWriter output, CancellationToken cancellationToken)
    {
        await DeleteStreamAsync(js, Stream, cancellationToken);
        // The same stream settings the runtime gives its streams (file storage, limits, 10 min duplicate window).
        var settings = new JetStreamSettings();
        await js.CreateStreamAsync(new StreamConfig(Stream, [Prefix + ".>"])
        {
            Storage = StreamConfigStorage.File,
            Retention = StreamConfigRetention.Limits,
            DuplicateWindow = settings.DuplicateWindow,
            NumReplicas = 1,
        }, cancellationToken);
        (string, byte[]) Make(int i) => ($"{Prefix}.k{i % options.Keys}", Wire.Event(9, i, tracker.NowUs()));
        var payloadBytes = Wire.Event(9, options.Events / 2, tracker.NowUs()).Length;

        // Warm-up (JIT, connection buffers), then start from an empty stream.
        var warm = Math.Min(2_000, options.Events);
        await Publisher.PipelinedAsync(js, warm, options.Window, Make, null, cancellationToken);
        await ConsumeAsync(js, "bench-raw-warm", warm, options, cancellationToken);
        await js.PurgeStreamAsync(Stream, new StreamPurgeRequest(), cancellationToken);

        var cpu = CpuSnapshot.Take(natsPid);
        var started = Stopwatch.GetTimestamp();
        var errors = await Publisher.PipelinedAsync(js, options.Events, options.Window, Make, null, cancellationToken);
        var publishSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var publishCpu = new CpuDelta(cpu, CpuSnapshot.Take(natsPid));
        var publishRate = (options.Events - errors) / publishSeconds;
        output.WriteLine(Text.Inv($"  publish : {options.Events} msgs of {payloadBytes} B, {options.Window} in flight: {publishSeconds:F3} s → {publishRate,9:F0} msgs/s ({errors} errors)"));
        publishCpu.Print(output, "            ", options.Events);

        // The same publishes through PublishAsync (one awaited request each) from many concurrent loops:
        // shows what the client's PublishConcurrentAsync path costs compared to plain request-reply.
        await js.PurgeStreamAsync(Stream, new StreamPurgeRequest(), cancellationToken);
        var loops = Math.Min(options.Window, 512);
        cpu = CpuSnapshot.Take(natsPid);
        started = Stopwatch.GetTimestamp();
        var awaitedErrors = 0;
        await Task.WhenAll(Enumerable.Range(0, loops).Select(w => Task.Run(async () =>
        {
            for (var i = w; i < options.Events; i += loops)
            {
                var (subject, data) = Make(i);
                var ack = await js.PublishAsync(subject, data, cancellationToken: cancellationToken);
                if (ack.Error is not null)
                {
                    Interlocked.Increment(ref awaitedErrors);
                }
            }
        }, cancellationToken)));
        var awaitedSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var awaitedCpu = new CpuDelta(cpu, CpuSnapshot.Take(natsPid));
        output.WriteLine(Text.Inv($"  publish': same, via PublishAsync from {loops} concurrent loops: {awaitedSeconds:F3} s → {options.Events / awaitedSeconds,9:F0} msgs/s ({awaitedErrors} errors)"));
        awaitedCpu.Print(output, "            ", options.Events);

        cpu = CpuSnapshot.Take(natsPid);
        started = Stopwatch.GetTimestamp();
        var consumed = await ConsumeAsync(js, "bench-raw", options.Events, options, cancellationToken);
        var consumeSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var consumeCpu = new CpuDelta(cpu, CpuSnapshot.Take(natsPid));
        var consumeRate = consumed / consumeSeconds;
        output.WriteLine(Text.Inv($"  consume : {consumed} msgs, explicit ack each, pull batch {options.Batch * 2}: {consumeSeconds:F3} s → {consumeRate,9:F0} msgs/s"));
        consumeCpu.Print(output, "            ", options.Events);

        await DeleteStreamAsync(js, Stream, cancellationToken);
        return new BaselineResult(publishRate, consumeRate, payloadBytes, errors);
    }

    /// <summary>Consumes <paramref name="count"/> messages with a durable pull consumer, acking each (as the router does).</summary>
    private static async Task<int> ConsumeAsync(INatsJSContext js, string durable, int count, BenchOptions options, CancellationToken cancellationToken)
    {
        var settings = new JetStreamSettings();
        var consumer = await js.CreateOrUpdateConsumerAsync(Stream, new ConsumerConfig(durable)
        {
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = settings.AckWait,
            MaxAckPending = settings.MaxAckPending,
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
        }, cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(60 + (count / 1_000)));
        var seen = 0;
        try
        {
            var opts = new NatsJSConsumeOpts { MaxMsgs = options.Batch * 2, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromSeconds(5) };
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: limit.Token))
            {
                await msg.AckAsync(cancellationToken: limit.Token);
                if (++seen >= count)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Console.Error.WriteLine(Text.Inv($"  consume {durable}: gave up after {seen} of {count} messages"));
        }
        await js.DeleteConsumerAsync(Stream, durable, cancellationToken);
        return seen;
    }

    public static async Task DeleteStreamAsync(INatsJSContext js, string name, CancellationToken cancellationToken)
    {
        try
        {
            await js.DeleteStreamAsync(name, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            // not there
        }
    }
}
