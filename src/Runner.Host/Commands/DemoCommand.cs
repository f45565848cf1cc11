using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;
using Runner.Host.Service;
using Runner.Sagas.Partitions;
using Runner.Sagas.Quarantine;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner demo</c>: runs combined mode on the manifests, publishes the sample events from
/// <c>{manifests}/samples/events.jsonl</c>, prints every transition as it commits, and stops when
/// every sample instance is done. Until effect workers exist, a clearly labelled stand-in answers
/// each command with a result event, the way an effect worker will.
/// </summary>
internal static class DemoCommand
{
    public static async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var run = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)[^6..];
        if (Environment.GetEnvironmentVariable("RUNNER_DATA_DIR") is null)
        {
            settings = settings with { DataDir = Path.Combine(Path.GetTempPath(), "runner-demo-" + run) };
        }
        var samples = Path.Combine(settings.Manifests, "samples", "events.jsonl");
        if (!File.Exists(samples))
        {
            Console.Error.WriteLine($"demo: no sample events at {samples}");
            return 1;
        }

        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var listener = new PrintingListener();
        await using var components = await RunnerComponents.StartAsync(settings, loggers, TimeProvider.System, listener, cancellationToken);
        var js = new NatsJSContext(components.Nats);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(90));

        var standIn = Task.Run(() => EffectStandInAsync(components.Nats, js, timeout.Token), CancellationToken.None);
        await Task.Delay(300, timeout.Token);

        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(samples).Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#')))
        {
            var item = JsonNode.Parse(line.Replace("{run}", run, StringComparison.Ordinal))!.AsObject();
            var subject = item["subject"]!.GetValue<string>();
            var payload = item["raw"] is { } raw ? Encoding.UTF8.GetBytes(raw.GetValue<string>()) : Encoding.UTF8.GetBytes(item["event"]!.ToJsonString());
            if (item["expect_instance"] is { } key)
            {
                expected.Add(key.GetValue<string>());
            }
            Console.WriteLine($"publish  {subject}");
            var ack = await js.PublishAsync(subject, payload, cancellationToken: timeout.Token);
            ack.EnsureSuccess();
        }

        try
        {
            while (!expected.All(listener.Done.ContainsKey))
            {
                await Task.Delay(100, timeout.Token);
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"demo: timed out; done {listener.Done.Count} of {expected.Count} instances");
            return 1;
        }
        await Task.Delay(500, CancellationToken.None);

        var quarantined = QuarantineRecords.List(components.Store, 100);
        Console.WriteLine();
        Console.WriteLine($"all {expected.Count} sample saga instances completed; {components.Sagas?.Relay.Published ?? 0} commands relayed to WORKFLOW_COMMANDS");
        foreach (var (key, state) in listener.Done.OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"  {key}: {state}");
        }
        Console.WriteLine($"{quarantined.Count} message(s) quarantined (bad input never stops the pipeline):");
        foreach (var record in quarantined)
        {
            Console.WriteLine($"  {record.Stream}#{record.Sequence} {record.Subject}: {record.Reason} - {record.Detail}");
        }
        await timeout.CancelAsync();
        try
        {
            await standIn;
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        return 0;
    }

    /// <summary>Stands in for effect workers: answers each command with a result event.</summary>
    private static async Task EffectStandInAsync(INatsConnection nats, INatsJSContext js, CancellationToken cancellationToken)
    {
        await foreach (var msg in nats.SubscribeAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken))
        {
            var command = JsonNode.Parse(msg.Data!)!.AsObject();
            var effect = command["effect"]!.GetValue<string>();
            var tenant = command["tenant"]!.GetValue<string>();
            var amount = command["payload"]?["amount"]?.GetValue<double>() ?? 0;
            var failed = effect == "payment.charge" && amount > 1000;
            var outcome = failed ? "failed" : "succeeded";
            Console.WriteLine($"effect   {effect} {command["command_id"]} -> {outcome} (demo stand-in for an effect worker)");
            var data = new JsonObject
            {
                ["command_id"] = command["command_id"]!.GetValue<string>(),
                ["correlation_id"] = command["correlation_id"]!.GetValue<string>(),
                ["saga"] = command["saga"]!.GetValue<string>(),
                ["effect"] = effect,
                ["outcome"] = outcome,
                ["attempts"] = 1,
            };
            if (failed)
            {
                data["error"] = new JsonObject { ["code"] = "card_declined", ["message"] = "amount over the demo card limit" };
            }
            else
            {
                data["result"] = new JsonObject { ["reference"] = "ref-" + command["command_id"]!.GetValue<string>()[^6..] };
            }
            var evt = new JsonObject
            {
                ["specversion"] = "1.0",
                ["id"] = "result:" + command["command_id"]!.GetValue<string>(),
                ["source"] = "runner/demo-effects",
                ["type"] = $"{effect}.{outcome}",
                ["time"] = CloudEventEncoder.FormatTime(DateTimeOffset.UtcNow),
                ["data"] = data,
            };
            var headers = new NatsHeaders { [EventHeaders.TenantId] = tenant };
            await js.PublishAsync($"workflow.evt.{tenant}.{effect}.{outcome}", Encoding.UTF8.GetBytes(evt.ToJsonString()),
                opts: new NatsJSPubOpts { MsgId = "result:" + command["command_id"]!.GetValue<string>() }, headers: headers, cancellationToken: cancellationToken);
        }
    }

    private sealed class PrintingListener : ITransitionListener
    {
        public ConcurrentDictionary<string, string> Done { get; } = new(StringComparer.Ordinal);

        public void OnCommitted(IReadOnlyList<TransitionNotice> notices)
        {
            foreach (var n in notices)
            {
                var status = JsonDocument.Parse(n.StateJson).RootElement is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("status", out var st) ? st.ToString() : "?";
                var commands = n.CommandIds.Count == 0 ? "" : $", {n.CommandIds.Count} command(s)";
                Console.WriteLine($"saga     {n.Instance} v{n.Version} on {n.EventType} -> {status}{commands}{(n.Done ? " [done]" : "")}");
                if (n.Done)
                {
                    Done[n.Instance.Key.Value] = status;
                }
            }
        }
    }
}
