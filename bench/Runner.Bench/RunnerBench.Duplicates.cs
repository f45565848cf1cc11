using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Keys;
using Runner.Sagas;
using Runner.Storage;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    /// <summary>
    /// Diagnostic (--check-duplicates): what happens when a publish that may be retried meets the
    /// server's duplicate window — (1) the router consumer is re-created and redelivers events whose
    /// inbox copies exist; (2) the relay publishes an outbox item whose command is already on
    /// WORKFLOW_COMMANDS (a crash between PubAck and the delete). Both should count as success.
    /// </summary>
    public async Task CheckDuplicatesAsync(CancellationToken cancellationToken)
    {
        var streams = RuntimeOptions.JetStream.Streams;
        var routerName = RouterConsumerOf(streams.AggregateEvents);

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
                // The restarted runtime holds the lease at a new epoch, and reads its own consumer.
                var c = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, RouterConsumerOf(streams.AggregateEvents), cancellationToken);
                return c.Info.NumPending == 0 && c.Info.NumAckPending == 0 && c.Info.AckFloor.StreamSeq >= aggregate;
            }
            catch (NatsJSApiException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(45), cancellationToken);
        var consumer = await ObserverJs.GetConsumerAsync(streams.AggregateEvents, RouterConsumerOf(streams.AggregateEvents), cancellationToken);
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
}
