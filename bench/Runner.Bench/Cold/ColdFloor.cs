using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Bench.Floor;
using Runner.Messaging;

namespace Runner.Bench.Cold;

/// <summary>
/// The floor mode of <c>--cold</c>: the tally saga's traffic alone, on the same backlog as the backlog mode. In this
/// process, over a connection of its own and through Runner's transport: a router stage forwards each deposit to its
/// partition's inbox subject (a batch at a time, one ack per batch), and one stage per partition counts each account's
/// deposits and publishes its settle command on the fifth — no script, no store, no outbox, no history, no logs. The
/// command observer times it as it times a runner, so its CPU per event beside <c>nats-server</c>'s is the share of the
/// server's work that moving these messages costs a client at all: goal 2's ratio read against what it can be.
/// </summary>
internal static class ColdFloor
{
    private const int Partitions = 16;
    private const int Batch = 256;

    public static async Task<ColdResult?> MeasureAsync(string root, int events, int window, TextWriter output, CancellationToken cancellationToken)
    {
        await using var run = await ColdRun.StartAsync(root, cancellationToken);
        var observer = new CommandObserver(events / ColdWorkload.DepositsPerAccount, run.NatsPid);
        await using var subscription = await run.Connection.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
        var observing = observer.RunAsync(subscription, cancellationToken);
        var clock = Stopwatch.StartNew();
        var errors = await Publisher.PipelinedAsync(run.Js, events, window, ColdWorkload.Event, null, cancellationToken);
        output.WriteLine(Text.Inv($"  backlog of {events:N0} events published in {clock.Elapsed.TotalSeconds:F1} s ({errors} errors) before the floor starts"));

        await using var connection = new NatsConnection(new NatsOpts { Url = run.Connection.Opts.Url, Name = "bench-floor" });
        await connection.ConnectAsync();
        var js = new NatsJSContext(connection);
        var pipeline = PubAckPipeline.For(connection);
        var settings = new JetStreamSettings();
        var streams = settings.Streams;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        observer.Watch(Environment.ProcessId, Stopwatch.GetTimestamp());
        var stages = new List<Task>
        {
            TrafficFloor.ForwardAsync(js, pipeline, settings, streams.AggregateEvents, "floor-router", "aggregate.*.account.*.deposited", Batch, NullLogger.Instance, msg =>
            {
                var account = msg.Subject.Split('.')[3];
                var partition = (uint)string.GetHashCode(account, StringComparison.Ordinal) % Partitions;
                return (Text.Inv($"{Runner.Core.Subjects.Subjects.InboxPrefix}.{partition}"), msg.Data, "floor:" + TrafficFloor.StringProperty(msg.Data, "id"));
            }, stop.Token),
        };
        for (var p = 0; p < Partitions; p++)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            var subject = Text.Inv($"{Runner.Core.Subjects.Subjects.InboxPrefix}.{p}");
            stages.Add(TrafficFloor.ForwardAsync(js, pipeline, settings, streams.Inbox, Text.Inv($"floor-p{p}"), subject, Batch, NullLogger.Instance, msg =>
            {
                var account = TrafficFloor.StringProperty(msg.Data, "account");
                var count = counts[account] = counts.GetValueOrDefault(account) + 1;
                if (count < ColdWorkload.DepositsPerAccount)
                {
                    return null;
                }
                var command = System.Text.Encoding.UTF8.GetBytes(Text.Inv($$"""{"command_id":"settle-{{account}}","tenant":"acme","effect":"account.settle","saga":"tally","correlation_id":"{{account}}","causation_id":"{{account}}","payload":{"account":"{{account}}","total":{{count}}},"created_at":"{{DateTimeOffset.UtcNow:O}}"}"""));
                return ("workflow.cmd.acme.account.settle", command, "settle-" + account);
            }, stop.Token));
        }
        try
        {
            var limit = TimeSpan.FromSeconds(60 + (events / 2_000));
            if (await Task.WhenAny(observer.Done, Task.Delay(limit, cancellationToken)) != observer.Done)
            {
                output.WriteLine(Text.Inv($"  FAILED: {observer.Arrived:N0} of {events / ColdWorkload.DepositsPerAccount:N0} commands after {limit.TotalSeconds:F0} s"));
                return null;
            }
            return observer.Result("floor", pipelined: false, events);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(stages);
            await subscription.UnsubscribeAsync();
            await observing;
        }
    }
}
