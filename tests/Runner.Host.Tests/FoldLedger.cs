using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Host.Tests.Operations;
using Xunit;

namespace Runner.Host.Tests;

/// <summary>
/// The fold saga, whose every transition commands <c>ledger.add</c> with the running order of the
/// values folded so far, and the producer that remembers what it published. The commands on
/// WORKFLOW_COMMANDS alone then show the outcome end to end: one per event, and each one's order
/// exactly its key's events up to it, as published (nothing lost, nothing applied twice, order kept).
/// </summary>
internal sealed class FoldLedger(INatsJSContext js)
{
    public static readonly IReadOnlyDictionary<string, string> Manifests = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["fold.yaml"] = """
            kind: saga
            name: fold
            script: fold.js
            triggers:
              - stream: AGGREGATE_EVENTS
                subject: "aggregate.*.fold.*.added"
                correlation: "subject[3]"
            """,
        ["fold.js"] = """
            'use strict';
            function on_event(state, event, ctx) {
              state = state || { sum: 0, order: [] };
              const next = { sum: state.sum + event.data.n, order: state.order.concat([event.data.n]) };
              return { state: next, commands: [{ effect: 'ledger.add', id: ctx.id('add'), payload: { n: event.data.n, order: next.order } }] };
            }
            """,
        // In saga mode no effect runs: the manifest is only there for the commands to name.
        ["effects.yaml"] = """
            kind: effect
            name: ledger.add
            provider: http
            http: { url: "http://127.0.0.1:9/x" }
            """,
    };

    private readonly Lock _gate = new();
    private readonly List<(string Key, int N)> _published = [];
    private int _next;

    /// <summary>Events published (and stored) so far.</summary>
    public int Published
    {
        get
        {
            lock (_gate)
            {
                return _published.Count;
            }
        }
    }

    /// <summary>
    /// Publishes <paramref name="count"/> events, event n on key <c>k{n % keys}</c>, continuing the
    /// numbering (one publisher at a time, so that the order kept is the stream's), <paramref name="burst"/> at a time with <paramref name="pause"/> between bursts.
    /// </summary>
    public async Task PublishAsync(int count, int keys, int burst, TimeSpan pause, CancellationToken cancellationToken)
    {
        for (var i = 0; i < count; i++)
        {
            var n = Interlocked.Increment(ref _next) - 1;
            await PublishOneAsync($"k{n % keys}", n, cancellationToken);
            if (i % burst == burst - 1 && i < count - 1)
            {
                await Task.Delay(pause, cancellationToken);
            }
        }
    }

    /// <summary>Publishes for <paramref name="duration"/>, <paramref name="burst"/> events every <paramref name="pause"/>.</summary>
    public async Task PublishForAsync(TimeSpan duration, int keys, int burst, TimeSpan pause, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < duration)
        {
            await PublishAsync(burst, keys, burst, TimeSpan.Zero, cancellationToken);
            await Task.Delay(pause, cancellationToken);
        }
    }

    private async Task PublishOneAsync(string key, int n, CancellationToken cancellationToken)
    {
        var evt = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = $"ev-{n}", ["source"] = "scale-out-test", ["type"] = "added",
            ["data"] = new JsonObject { ["n"] = n },
        };
        var body = Encoding.UTF8.GetBytes(evt.ToJsonString());
        // The message id makes a retry after a lost PubAck safe: the stream keeps one copy.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var ack = await js.PublishAsync($"aggregate.acme.fold.{key}.added", body, opts: new NatsJSPubOpts { MsgId = $"ev-{n}" }, cancellationToken: cancellationToken);
                ack.EnsureSuccess();
                break;
            }
            catch (NatsException) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), cancellationToken);
            }
        }
        lock (_gate)
        {
            _published.Add((key, n));
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> events are published.</summary>
    public async Task WaitPublishedAsync(int count, CancellationToken cancellationToken)
    {
        while (Published < count)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
        }
    }

    /// <summary>Waits until WORKFLOW_COMMANDS holds a command for every event published.</summary>
    public async Task WaitForCommandsAsync(SagaReplicas replicas, TimeSpan within, CancellationToken cancellationToken)
    {
        var expected = Published;
        await replicas.WaitUntilAsync($"WORKFLOW_COMMANDS holds {expected} commands", within,
            async token => await RunnerNode.MessagesAsync(js, "WORKFLOW_COMMANDS", token) >= expected, cancellationToken);
    }

    /// <summary>The end-to-end check: every command on WORKFLOW_COMMANDS against what was published.</summary>
    public async Task AssertExactFoldAsync(SagaReplicas replicas, CancellationToken cancellationToken)
    {
        List<(string Key, int N)> published;
        lock (_gate)
        {
            published = [.. _published];
        }
        var messages = await RunnerNode.ReadAllAsync(js, "WORKFLOW_COMMANDS", cancellationToken);
        var keyOf = published.ToDictionary(e => e.N, e => e.Key);
        var positionOf = published.GroupBy(e => e.Key).SelectMany(g => g.Select((e, i) => (e.N, Position: i))).ToDictionary(e => e.N, e => e.Position);
        var eventsOf = published.GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Select(e => e.N).ToList(), StringComparer.Ordinal);

        var problems = new List<string>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<int, int>();
        foreach (var (_, body, headers) in messages)
        {
            var id = body["command_id"]!.GetValue<string>();
            var n = body["payload"]!["n"]!.GetValue<int>();
            var order = body["payload"]!["order"]!.AsArray().Select(v => v!.GetValue<int>()).ToList();
            ids.Add(id);
            seen[n] = seen.GetValueOrDefault(n) + 1;
            if (headers?["Nats-Msg-Id"].ToString() != id)
            {
                problems.Add($"command {id} was published with Nats-Msg-Id {headers?["Nats-Msg-Id"]}");
            }
            if (!keyOf.TryGetValue(n, out var key))
            {
                problems.Add($"command {id} is for event {n}, which was never published");
                continue;
            }
            if (body["correlation_id"]?.GetValue<string>() != key)
            {
                problems.Add($"command {id} for event {n} names key {body["correlation_id"]}, not {key}");
            }
            var expected = eventsOf[key].Take(positionOf[n] + 1).ToList();
            if (!order.SequenceEqual(expected))
            {
                problems.Add($"command for event {n} of {key} carries order [{string.Join(",", order)}], expected [{string.Join(",", expected)}]");
            }
        }
        problems.AddRange(seen.Where(s => s.Value > 1).Select(s => $"event {s.Key} has {s.Value} commands"));
        problems.AddRange(published.Where(e => !seen.ContainsKey(e.N)).Select(e => $"event {e.N} of {e.Key} has no command"));

        Assert.True(messages.Count == published.Count && ids.Count == published.Count && problems.Count == 0,
            $"{published.Count} events published, {messages.Count} commands with {ids.Count} distinct ids, {problems.Count} problems:\n"
            + string.Join("\n", problems.Take(30)) + "\n" + await replicas.DescribeAsync());
    }
}
