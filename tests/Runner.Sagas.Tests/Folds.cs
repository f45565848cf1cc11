using System.Globalization;
using Runner.Core.Transitions;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// Events published to the fold saga and the check of what came out: one command per event, each
/// carrying the order of the key's events up to and including it — the exact fold, in order,
/// nothing lost, nothing applied twice — whichever replica ran it.
/// </summary>
internal sealed class Folds
{
    private readonly Dictionary<string, List<int>> _events = new(StringComparer.Ordinal);
    private int _next;

    public int Count => _events.Values.Sum(e => e.Count);

    public async Task PublishAsync(ReplicaSet set, string key, CancellationToken cancellationToken, string type = "added", object? extra = null)
    {
        var n = Interlocked.Increment(ref _next);
        lock (_events)
        {
            if (!_events.TryGetValue(key, out var list))
            {
                _events[key] = list = [];
            }
            list.Add(n);
        }
        var subject = $"aggregate.acme.fold.{key}.{type}";
        var data = extra is null ? (object)new { n } : new { n, after_ms = extra };
        await set.PublishAsync(subject, "ev-" + n.ToString(CultureInfo.InvariantCulture), data, cancellationToken, type);
    }

    /// <summary>Publishes <paramref name="rounds"/> events to each of <paramref name="keys"/> keys, a round at a time.</summary>
    public async Task PublishRoundsAsync(ReplicaSet set, int keys, int rounds, TimeSpan pause, CancellationToken cancellationToken)
    {
        for (var r = 0; r < rounds; r++)
        {
            for (var k = 0; k < keys; k++)
            {
                await PublishAsync(set, "k" + k.ToString(CultureInfo.InvariantCulture), cancellationToken);
            }
            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause, cancellationToken);
            }
        }
    }

    public async Task WaitForCommandsAsync(ReplicaSet set, int expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (await StoredAsync(set, cancellationToken) < (ulong)expected)
        {
            if (deadline.IsCancellationRequested)
            {
                var owners = string.Join(" ", set.Owners().OrderBy(o => o.Key).Select(o => $"{o.Key}:{string.Join("+", o.Value)}"));
                var runs = string.Join("; ", set.Replicas.Where(r => r.Runtime is not null)
                    .Select(r => $"{r.Name}: {string.Join(", ", r.Runtime!.DescribeRuns())} outbox {r.Runtime.Relay.Depth()}"));
                var published = string.Join(" ", set.Replicas.Where(r => r.Runtime is not null).Select(r => $"{r.Name}:{r.Runtime!.Relay.Published}"));
                var quarantined = string.Join(" ", set.Replicas.Where(r => r.Store is not null).Select(r => $"{r.Name}:{Quarantined(r.Store!)}"));
                Assert.Fail($"{await set.MessagesAsync(set.Options.JetStream.Streams.WorkflowCommands, cancellationToken)} of {expected} commands arrived; "
                    + $"inbox {await set.MessagesAsync(set.Options.JetStream.Streams.Inbox, cancellationToken)}; owners {owners}; "
                    + $"inbox last by partition {await set.InboxLastAsync(cancellationToken)}; runs {runs}; published by relay {published}; "
                    + $"missing {await MissingAsync(set, cancellationToken)}; commands stream {await ReplicasAsync(set, cancellationToken)}; quarantined {quarantined}; "
                    + $"stores {Stores(set)}");
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>For a failure's message: the events without a command, as "n:key".</summary>
    private async Task<string> MissingAsync(ReplicaSet set, CancellationToken cancellationToken)
    {
        try
        {
            var seen = (await set.CommandsAsync(cancellationToken))
                .Where(c => c.Payload.TryGetProperty("n", out _))
                .Select(c => c.Payload.GetProperty("n").GetInt32())
                .ToHashSet();
            List<string> missing;
            lock (_events)
            {
                missing = [.. _events.SelectMany(e => e.Value.Where(n => !seen.Contains(n)).Select(n => $"{n}:{e.Key}")).Take(40)];
            }
            return missing.Count == 0 ? "none" : string.Join(" ", missing);
        }
        catch (NATS.Client.Core.NatsException ex)
        {
            return $"(commands unreadable: {ex.Message})";
        }
    }

    /// <summary>
    /// For a failure's message, what each replica's store holds whether or not it owns the partition: outbox items
    /// per partition, and each key's instance version and fold. A command that was never created shows as a fold
    /// without its event; one created and never published, as an outbox item left in some store.
    /// </summary>
    private string Stores(ReplicaSet set)
    {
        List<string> keys;
        lock (_events)
        {
            keys = [.. _events.Keys.Order(StringComparer.Ordinal)];
        }
        return string.Join(" | ", set.Replicas.Where(r => r.Store is not null && r.Runtime is not null).Select(r =>
        {
            var outbox = string.Join(" ", Enumerable.Range(0, set.Options.Partitions).Select(p => new Runner.Core.Ids.PartitionId(p))
                .Select(p => (p, n: r.Store!.Read(reader => reader.Visit(Runner.Core.Keys.KeySpace.Outbox, Runner.Core.Keys.StoreKeys.OutboxPrefix(p), (_, _) => { }))))
                .Where(x => x.n > 0).Select(x => $"p{x.p.Value}:{x.n}"));
            var instances = string.Join(" ", keys.Select(k => r.Instance("acme", "fold", k) is { } i
                ? $"{k}:v{i.Version}{(i.State.ValueKind == System.Text.Json.JsonValueKind.Object && i.State.TryGetProperty("order", out var order) ? order.GetRawText() : string.Empty)}"
                : $"{k}:-"));
            return $"{r.Name}: outbox {(outbox.Length == 0 ? "empty" : outbox)}; instances {instances}";
        }));
    }

    /// <summary>For a failure's message: how many quarantine and held records a replica's store has, and the first reasons.</summary>
    private static string Quarantined(Runner.Storage.LmdbStore store)
    {
        var reasons = new List<string>();
        var count = 0;
        store.Read(reader => reader.Visit(Runner.Core.Keys.KeySpace.Quarantine, [], (_, value) =>
        {
            count++;
            if (reasons.Count < 5)
            {
                using var record = System.Text.Json.JsonDocument.Parse(value.ToArray());
                reasons.Add(record.RootElement.TryGetProperty("reason", out var reason) ? reason.ToString() : "?");
            }
        }));
        var held = store.Read(reader => reader.Visit(Runner.Core.Keys.KeySpace.Held, [], (_, _) => { }));
        return $"{count} ({string.Join(",", reasons)}), held {held}";
    }

    /// <summary>For a failure's message: the commands stream's leader and each replica's state.</summary>
    private static async Task<string> ReplicasAsync(ReplicaSet set, CancellationToken cancellationToken)
    {
        try
        {
            var info = (await set.Js.GetStreamAsync(set.Options.JetStream.Streams.WorkflowCommands, cancellationToken: cancellationToken)).Info;
            var peers = info.Cluster?.Replicas?.Select(r => $"{r.Name} current={r.Current} lag={r.Lag}") ?? [];
            return $"leader {info.Cluster?.Leader} last seq {info.State.LastSeq}; {string.Join(", ", peers)}";
        }
        catch (NATS.Client.Core.NatsException ex)
        {
            return $"(no stream info: {ex.Message})";
        }
    }

    /// <summary>Commands stored so far; 0 while the server does not answer (a cluster electing a leader).</summary>
    private static async Task<ulong> StoredAsync(ReplicaSet set, CancellationToken cancellationToken)
    {
        try
        {
            return await set.MessagesAsync(set.Options.JetStream.Streams.WorkflowCommands, cancellationToken);
        }
        catch (NATS.Client.Core.NatsException)
        {
            return 0;
        }
    }

    /// <summary>
    /// As <see cref="Verify"/>, on the set's commands; a failure's message also tells, for each key whose fold is out
    /// of order, where the order changed: the key's events in the trigger stream, in the inbox, and as each replica
    /// applied them.
    /// </summary>
    public async Task VerifyAsync(ReplicaSet set, CancellationToken cancellationToken)
    {
        var commands = await set.CommandsAsync(cancellationToken);
        try
        {
            Verify(commands);
        }
        catch (Xunit.Sdk.XunitException ex)
        {
            var keys = OutOfOrder(commands);
            var described = new List<string>();
            foreach (var key in keys.Take(3))
            {
                described.Add(await DescribeKeyAsync(set, key, cancellationToken));
            }
            throw new Xunit.Sdk.XunitException($"{ex.Message}{Environment.NewLine}keys out of order: {string.Join(" ", keys)}{Environment.NewLine}{string.Join(Environment.NewLine, described)}");
        }
    }

    /// <summary>The folds the commands of <paramref name="key"/> carry, shortest first.</summary>
    private static List<List<int>> OrdersOf(IEnumerable<CommandMessage> folds, string key) =>
        [.. folds.Where(c => c.CorrelationId == key)
            .Select(c => c.Payload.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()).ToList())
            .OrderBy(o => o.Count)];

    /// <summary>The keys whose commands are not each the fold's prefix.</summary>
    private List<string> OutOfOrder(IReadOnlyList<CommandMessage> commands)
    {
        var bad = new List<string>();
        lock (_events)
        {
            foreach (var (key, events) in _events)
            {
                var orders = OrdersOf(commands.Where(c => c.Payload.TryGetProperty("n", out _)), key);
                if (orders.Count != events.Count || orders.Where((o, i) => !o.SequenceEqual(events.Take(i + 1))).Any())
                {
                    bad.Add(key);
                }
            }
        }
        return bad;
    }

    /// <summary>For a failure's message: one key's events as the trigger stream, the inbox and each replica's commits hold them.</summary>
    private static async Task<string> DescribeKeyAsync(ReplicaSet set, string key, CancellationToken cancellationToken)
    {
        var streams = set.Options.JetStream.Streams;
        // Trigger stream: "seq=ev-n" for the key's events, in stream order.
        var sources = new Dictionary<ulong, string>();
        var trigger = new List<string>();
        foreach (var (seq, subject, msgId) in await ReadAllAsync(set, streams.AggregateEvents, cancellationToken))
        {
            if (subject.Contains($".{key}.", StringComparison.Ordinal))
            {
                sources[seq] = msgId;
                trigger.Add($"{seq}={msgId}");
            }
        }
        // Inbox: "inboxSeq=ev-n" for the inbox copies of those events, in inbox order.
        var inbox = new List<string>();
        foreach (var (seq, subject, msgId) in await ReadAllAsync(set, streams.Inbox, cancellationToken))
        {
            var parts = msgId.Split(':');
            if (parts.Length >= 2 && parts[0] == streams.AggregateEvents && ulong.TryParse(parts[1], CultureInfo.InvariantCulture, out var source) && sources.TryGetValue(source, out var id))
            {
                inbox.Add($"{seq}@{subject}={id}");
            }
        }
        // Commits: "replica:v{version}=ev-n", in the order each replica's listener saw them.
        var commits = set.Replicas.SelectMany(r => r.Listener.Notices.Where(n => n.Instance.Key.Value == key).Select(n => $"{r.Name}:v{n.Version}={n.EventId}"));
        // History: each replica's steps of the key, with the inbox sequence each event was read at (the inbox is purged).
        var history = set.Replicas.Where(r => r.Store is not null && r.Runtime is not null).Select(r =>
        {
            var steps = new List<string>();
            r.Store!.Read(reader => reader.Visit(Runner.Core.Keys.KeySpace.History, [], (k, value) =>
            {
                var parts = System.Text.Encoding.UTF8.GetString(k).Split(Runner.Core.Keys.StoreKeys.Separator);
                if (parts.Length >= 4 && parts[3] == key)
                {
                    using var step = System.Text.Json.JsonDocument.Parse(value.ToArray());
                    var root = step.RootElement;
                    steps.Add($"v{root.GetProperty("version")}:{root.GetProperty("event_id")}@inbox{root.GetProperty("inbox_seq")}/src{root.GetProperty("seq")}");
                }
            }));
            return $"{r.Name}: {string.Join(" ", steps)}";
        });
        return $"{key}: trigger [{string.Join(" ", trigger)}]; inbox [{string.Join(" ", inbox)}]; commits [{string.Join(" ", commits)}]; history [{string.Join(" | ", history)}]";
    }

    /// <summary>Every message of a stream as (sequence, subject, Nats-Msg-Id), read with an ordered consumer.</summary>
    private static async Task<List<(ulong Seq, string Subject, string MsgId)>> ReadAllAsync(ReplicaSet set, string stream, CancellationToken cancellationToken)
    {
        var result = new List<(ulong, string, string)>();
        var total = await set.MessagesAsync(stream, cancellationToken);
        if (total == 0)
        {
            return result;
        }
        var consumer = await set.Js.CreateOrderedConsumerAsync(stream, cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            var id = msg.Headers is { } headers && headers.TryGetValue("Nats-Msg-Id", out var value) ? value.ToString() : "?";
            result.Add((msg.Metadata?.Sequence.Stream ?? 0, msg.Subject, id));
            if ((ulong)result.Count >= total)
            {
                break;
            }
        }
        return result;
    }

    /// <summary>The commands of the fold's events (timer commands left out) are exactly one per event, each the fold's prefix.</summary>
    public void Verify(IReadOnlyList<CommandMessage> commands)
    {
        var folds = commands.Where(c => c.Payload.TryGetProperty("n", out _)).ToList();
        Assert.Equal(folds.Count, folds.Select(c => c.CommandId).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(Count, folds.Count);
        foreach (var (key, events) in _events)
        {
            var orders = OrdersOf(folds, key);
            Assert.Equal(events.Count, orders.Count);
            for (var i = 0; i < events.Count; i++)
            {
                Assert.Equal(events.Take(i + 1), orders[i]);
            }
        }
    }
}
