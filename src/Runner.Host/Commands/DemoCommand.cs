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
/// <c>runner demo</c>: starts a small loopback upstream (inventory, payments, shipping, gateway),
/// runs combined mode on the manifests with real effect workers calling it, publishes the sample
/// events from <c>{manifests}/samples/events.jsonl</c>, prints every transition and upstream call as
/// it happens, and stops when every sample instance is done and every command has been performed.
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
        var scratch = Path.Combine(Path.GetTempPath(), "runner-demo-" + run);
        if (Environment.GetEnvironmentVariable("RUNNER_DATA_DIR") is null)
        {
            settings = settings with { DataDir = Path.Combine(scratch, "data") };
        }
        var samples = Path.Combine(settings.Manifests, "samples", "events.jsonl");
        if (!File.Exists(samples))
        {
            Console.Error.WriteLine($"demo: no sample events at {samples}");
            return 1;
        }

        var pipelines = DemoPipeline.Root(scratch);
        Directory.CreateDirectory(pipelines);
        Environment.SetEnvironmentVariable("PIPELINE_ROOT", Environment.GetEnvironmentVariable("PIPELINE_ROOT") ?? pipelines);
        pipelines = Environment.GetEnvironmentVariable("PIPELINE_ROOT")!;

        await using var upstream = await DemoUpstream.StartAsync(cancellationToken);
        upstream.Answered += line => Console.WriteLine($"upstream {line}");
        var stub = upstream.Url.ToString().TrimEnd('/');
        Environment.SetEnvironmentVariable("STUB_URL", Environment.GetEnvironmentVariable("STUB_URL") ?? stub);
        Environment.SetEnvironmentVariable("GATEWAY_URL", Environment.GetEnvironmentVariable("GATEWAY_URL") ?? stub + "/gateway");
        if (Environment.GetEnvironmentVariable("RUNNER_SECRETS_DIR") is null)
        {
            // The demo's payment key, as a Swarm secret would provide it: a file, never a value in git.
            var secrets = Path.Combine(scratch, "secrets");
            Directory.CreateDirectory(secrets);
            await File.WriteAllTextAsync(Path.Combine(secrets, "payments_key"), "demo-payments-key\n", cancellationToken);
            settings = settings with { SecretsDir = secrets };
        }
        Console.WriteLine($"demo upstream listening on {stub}");

        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var listener = new PrintingListener();
        await using var components = await RunnerComponents.StartAsync(settings, loggers, TimeProvider.System, listener, cancellationToken);
        var js = new NatsJSContext(components.Nats);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(90));

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
            while (!expected.All(listener.Done.ContainsKey) || !await EffectsIdleAsync(js, components, timeout.Token))
            {
                await Task.Delay(100, timeout.Token);
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"demo: timed out; done {listener.Done.Count} of {expected.Count} instances");
            return 1;
        }

        var quarantined = QuarantineRecords.List(components.Store, 100);
        var executed = components.Effects?.Workers.Sum(w => w.Executed) ?? 0;
        Console.WriteLine();
        Console.WriteLine($"all {expected.Count} sample saga instances finished; {components.Sagas?.Relay.Published ?? 0} commands relayed, {executed} performed by effect workers");
        foreach (var (key, state) in listener.Done.OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"  {key}: {state}");
        }
        Console.WriteLine($"{quarantined.Count} message(s) quarantined (bad input never stops the pipeline):");
        foreach (var record in quarantined)
        {
            Console.WriteLine($"  {record.Stream}#{record.Sequence} {record.Subject}: {record.Reason} - {record.Detail}");
        }

        if (components.Slices is null)
        {
            return 0;
        }
        try
        {
            return await DemoPipeline.RunAsync(js, pipelines, "run-" + run, timeout.Token) ? 0 : 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("demo: timed out waiting for the pipeline run");
            return 1;
        }
    }

    /// <summary>True when the outbox is empty and no effect consumer has a command waiting or in flight.</summary>
    private static async Task<bool> EffectsIdleAsync(INatsJSContext js, RunnerComponents components, CancellationToken cancellationToken)
    {
        if (components.Store.Read(r => r.Count(Runner.Core.Keys.KeySpace.Outbox)) > 0)
        {
            return false;
        }
        foreach (var worker in components.Effects?.Workers ?? [])
        {
            var info = await js.GetConsumerAsync(components.Settings.JetStream.Streams.WorkflowCommands, worker.Consumer, cancellationToken);
            if (info.Info.NumPending > 0 || info.Info.NumAckPending > 0)
            {
                return false;
            }
        }
        return true;
    }

    private sealed class PrintingListener : ITransitionListener
    {
        public ConcurrentDictionary<string, string> Done { get; } = new(StringComparer.Ordinal);

        public void OnCommitted(IReadOnlyList<TransitionNotice> notices)
        {
            foreach (var n in notices)
            {
                var root = JsonDocument.Parse(n.StateJson).RootElement;
                var status = root is { ValueKind: JsonValueKind.Object } && root.TryGetProperty("status", out var st) ? st.ToString() : "?";
                if (n.Done && root.ValueKind == JsonValueKind.Object && root.TryGetProperty("reason", out var reason))
                {
                    status += $" ({reason})";
                }
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
