using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Storage;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

public sealed class CrashTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const int Events = 2000;
    private const int Keys = 40;
    private const int Partitions = 8;

    private const string Manifest = """
        kind: saga
        name: fold
        script: fold.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.fold.*.added"
            correlation: "subject[3]"
        """;

    private const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { sum: 0, order: [] };
          return {
            state: { sum: state.sum + event.data.n, order: state.order.concat([event.data.n]) },
            commands: [{ effect: 'ledger.add', payload: { n: event.data.n } }],
          };
        }
        """;

    private const string Effects = """
        kind: effect
        name: ledger.add
        provider: http
        http: { url: "http://127.0.0.1:9/x" }
        """;

    [Fact]
    public async Task Repeated_SIGKILL_while_events_flow_loses_nothing_and_applies_nothing_twice()
    {
        using var dir = new TempDirectory("runner-crash");
        Directory.CreateDirectory(dir.File("manifests"));
        await File.WriteAllTextAsync(dir.File("manifests/fold.yaml"), Manifest);
        await File.WriteAllTextAsync(dir.File("manifests/fold.js"), Script);
        await File.WriteAllTextAsync(dir.File("manifests/effects.yaml"), Effects);
        var environment = new Dictionary<string, string>
        {
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_DATA_DIR"] = dir.File("data"),
            ["RUNNER_MANIFESTS"] = dir.File("manifests"),
            ["RUNNER_MODE"] = "saga",
            ["RUNNER_PARTITIONS"] = Partitions.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RUNNER_ACK_WAIT"] = "2s",
            ["RUNNER_CONSUMER_PREFIX"] = "crash",
        };
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);

        var runner = RunnerProcess.Start(["serve"], environment);
        try
        {
            // Producer: 2000 events, paced so that the kills land mid-flow.
            var producer = Task.Run(async () =>
            {
                await WaitForStreamAsync(js, "AGGREGATE_EVENTS", cts.Token);
                for (var i = 0; i < Events; i++)
                {
                    var evt = new JsonObject
                    {
                        ["specversion"] = "1.0", ["id"] = $"ev-{i}", ["source"] = "crash-test", ["type"] = "added",
                        ["data"] = new JsonObject { ["n"] = i },
                    };
                    // As a producer does: a publish the busy server did not answer in time is sent
                    // again with the same Nats-Msg-Id, which the stream stores once.
                    while (true)
                    {
                        try
                        {
                            var ack = await js.PublishAsync($"aggregate.acme.fold.k{i % Keys}.added", Encoding.UTF8.GetBytes(evt.ToJsonString()),
                                opts: new NatsJSPubOpts { MsgId = $"ev-{i}" }, cancellationToken: cts.Token);
                            ack.EnsureSuccess();
                            break;
                        }
                        catch (NatsJSPublishNoResponseException)
                        {
                            await Task.Delay(100, cts.Token);
                        }
                    }
                    if (i % 100 == 99)
                    {
                        await Task.Delay(250, cts.Token);
                    }
                }
            }, cts.Token);

            var kills = 0;
            while (kills < 6)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(700 + (kills * 150)), cts.Token);
                if (runner.HasExited)
                {
                    var code = await runner.WaitForExitAsync(cts.Token);
                    Assert.Fail($"runner exited by itself with {code} after {kills} kill(s):\n{runner.Output}");
                }
                await runner.KillAsync(cts.Token);
                runner.Dispose();
                kills++;
                runner = RunnerProcess.Start(["serve"], environment);
            }
            await producer;

            try
            {
                await WaitForCommandsAsync(js, Events, cts.Token);
            }
            catch (OperationCanceledException)
            {
                var streams = new StringBuilder();
                foreach (var name in new[] { "AGGREGATE_EVENTS", "RUNNER_INBOX", "WORKFLOW_COMMANDS" })
                {
                    var info = await js.GetStreamAsync(name, cancellationToken: CancellationToken.None);
                    streams.Append(name).Append('=').Append(info.Info.State.Messages).Append(' ');
                }
                var output = runner.Output;
                Assert.Fail($"not all commands arrived: {streams}\nlast runner output:\n{output[Math.Max(0, output.Length - 6000)..]}");
            }
            await runner.KillAsync(cts.Token);
            Assert.True(kills >= 5);
        }
        finally
        {
            runner.Dispose();
        }

        // Every command exactly once on WORKFLOW_COMMANDS (by Nats-Msg-Id = command_id).
        var commands = await ReadCommandsAsync(js, cts.Token);
        Assert.Equal(Events, commands.Count);
        Assert.Equal(Events, commands.Select(c => c.Id).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, Events), commands.Select(c => c.N).Order());

        // Every instance's state is the exact fold of its events, in order, each applied once.
        using var store = new LmdbStore(new LmdbOptions { Path = Path.Combine(dir.File("data"), "lmdb") }, NullLogger<LmdbStore>.Instance);
        // The last kill may fall between a command's PubAck and the commit that deletes its outbox record: what is left
        // there was published (the next start publishes it again under the same Nats-Msg-Id), never a command lost.
        var published = commands.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        var left = store.Read(r => r.Scan(KeySpace.Outbox, [], 100_000))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.CommandMessage)!.CommandId).ToList();
        Assert.All(left, id => Assert.Contains(id, published));
        for (var k = 0; k < Keys; k++)
        {
            var instance = new InstanceId(new TenantId("acme"), new SagaName("fold"), new CorrelationKey($"k{k}"));
            var raw = store.Read(r => r.Get(KeySpace.Saga, StoreKeys.Instance(Partitioner.PartitionOf(instance, Partitions), instance)));
            Assert.NotNull(raw);
            var record = JsonSerializer.Deserialize(raw, CoreJsonContext.Default.SagaInstanceRecord)!;
            var expected = Enumerable.Range(0, Events / Keys).Select(j => (j * Keys) + k).ToList();
            Assert.Equal(expected, record.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(expected.Sum(), record.State.GetProperty("sum").GetInt32());
            Assert.Equal(expected.Count, record.Version);
        }
    }

    private static async Task WaitForStreamAsync(INatsJSContext js, string stream, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await js.GetStreamAsync(stream, cancellationToken: cancellationToken);
                return;
            }
            catch (NatsJSApiException)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    private static async Task WaitForCommandsAsync(INatsJSContext js, int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                var stream = await js.GetStreamAsync("WORKFLOW_COMMANDS", cancellationToken: cancellationToken);
                if (stream.Info.State.Messages >= count)
                {
                    return;
                }
            }
            catch (NatsJSApiException)
            {
                // not created yet
            }
            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task<List<(string Id, int N)>> ReadCommandsAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        var stream = await js.GetStreamAsync("WORKFLOW_COMMANDS", cancellationToken: cancellationToken);
        var total = (int)stream.Info.State.Messages;
        var result = new List<(string, int)>();
        var consumer = await js.CreateOrderedConsumerAsync("WORKFLOW_COMMANDS", cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            var command = JsonSerializer.Deserialize(msg.Data!, CoreJsonContext.Default.CommandMessage)!;
            Assert.Equal(command.CommandId, msg.Headers!["Nats-Msg-Id"].ToString());
            result.Add((command.CommandId, command.Payload.GetProperty("n").GetInt32()));
            if (result.Count >= total)
            {
                break;
            }
        }
        return result;
    }
}
