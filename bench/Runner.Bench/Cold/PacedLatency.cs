using System.Diagnostics;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace Runner.Bench.Cold;

/// <summary>
/// Goal 4 as a deployed runner meets it: the tally saga's events published at a steady rate into a
/// <c>runner serve</c> of its own (not the bench's process), each account's fifth deposit timed
/// from just before its publish to its settle command's arrival. A window is <c>rate × seconds</c>
/// events (whole groups of accounts), so a fifth of its events are timed: every account's last.
/// </summary>
internal sealed class PacedLatency
{
    private readonly long[] _published;
    private readonly long[] _arrived;
    // When each account's latest deposit reached the inbox (its fifth is its last); all 0 unless the inbox is watched.
    private readonly long[] _inbox;
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private int _commands;
    private int _expected = int.MaxValue;
    private TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="events">Every event the run publishes (the accounts they name are numbered below <c>events / 5</c>).</param>
    public PacedLatency(int events)
    {
        var accounts = (events / ColdWorkload.DepositsPerAccount) + ColdWorkload.GroupKeys;
        _published = new long[accounts];
        _arrived = new long[accounts];
        _inbox = new long[accounts];
    }

    public int Commands => Volatile.Read(ref _commands);

    /// <summary>Completes once <paramref name="commands"/> commands in all have come.</summary>
    public Task UntilAsync(int commands)
    {
        _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _expected, commands);
        if (Commands >= commands)
        {
            _done.TrySetResult();
        }
        return _done.Task;
    }

    /// <summary>Notes when each account's settle command arrives (a command re-published under the same id counts once).</summary>
    public Task RunAsync(INatsSub<byte[]> subscription, CancellationToken cancellationToken) =>
        ReadAsync(subscription, (msg, now) =>
        {
            if (msg.Headers?.TryGetValue("Nats-Msg-Id", out var id) == true && !_seen.Add(id.ToString()))
            {
                return;
            }
            Note(_arrived, msg.Data, now);
            if (Interlocked.Increment(ref _commands) >= Volatile.Read(ref _expected))
            {
                _done.TrySetResult();
            }
        }, cancellationToken);

    /// <summary>
    /// Notes when each account's deposits reach the inbox, from a core subscription to the inbox subjects (an inbox
    /// message is the event as the router re-encodes it, its data naming the account). An account's deposits reach its
    /// partition in order, so the last noted is its fifth.
    /// </summary>
    public Task RunInboxAsync(INatsSub<byte[]> subscription, CancellationToken cancellationToken) =>
        ReadAsync(subscription, (msg, now) => Note(_inbox, msg.Data, now), cancellationToken);

    /// <summary>Hands every message of <paramref name="subscription"/> to <paramref name="handle"/> with the time it was read, until the subscription or the run ends.</summary>
    private static async Task ReadAsync(INatsSub<byte[]> subscription, Action<NatsMsg<byte[]>, long> handle, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var msg in subscription.Msgs.ReadAllAsync(cancellationToken))
            {
                handle(msg, Stopwatch.GetTimestamp());
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Notes <paramref name="now"/> for the account a message's data names, if it names one of this run's.</summary>
    private static void Note(long[] times, byte[]? data, long now)
    {
        if (Account(data) is { } account && account < times.Length)
        {
            times[account] = now;
        }
    }

    /// <summary>
    /// Publishes events <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> at
    /// <paramref name="rate"/> a second, each fifth deposit's time noted just before it goes out; PubAcks are
    /// read as they come. Returns how many publishes failed.
    /// </summary>
    public async Task<int> PublishPacedAsync(INatsJSContext js, int first, int count, int rate, CancellationToken cancellationToken)
    {
        var acks = System.Threading.Channels.Channel.CreateUnbounded<(int, NatsJSPublishConcurrentFuture)>(
            new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var acker = Task.Run(async () =>
        {
            var errors = 0;
            await foreach (var item in acks.Reader.ReadAllAsync(cancellationToken))
            {
                errors += await Publisher.CompleteAsync(item, null, cancellationToken);
            }
            return errors;
        }, cancellationToken);
        var interval = Stopwatch.Frequency / (double)rate;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var due = start + (long)(i * interval);
            var now = Stopwatch.GetTimestamp();
            if (due - now > Stopwatch.Frequency / 1000)
            {
                await Task.Delay(Stopwatch.GetElapsedTime(now, due), cancellationToken);
            }
            var n = first + i;
            var (subject, data) = ColdWorkload.Event(n);
            if (IsLastDeposit(n))
            {
                _published[AccountOf(n)] = Stopwatch.GetTimestamp();
            }
            await acks.Writer.WriteAsync((n, await js.PublishConcurrentAsync(subject, data, cancellationToken: cancellationToken)), cancellationToken);
        }
        acks.Writer.Complete();
        return await acker;
    }

    /// <summary>Publish → command of the accounts whose deposits are events <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/>, in µs.</summary>
    public Percentiles Latencies(int first, int count) =>
        new(Timed(first, count).Select(t => (long)Stopwatch.GetElapsedTime(t.Published, t.Arrived).TotalMicroseconds));

    /// <summary>The same split at the inbox, in µs: publish → inbox (the router's hop) and inbox → command (the partition worker and the relay).</summary>
    public (Percentiles ToInbox, Percentiles FromInbox) Hops(int first, int count)
    {
        var timed = Timed(first, count).Where(t => t.Inbox > 0).ToList();
        return (new(timed.Select(t => (long)Stopwatch.GetElapsedTime(t.Published, t.Inbox).TotalMicroseconds)),
            new(timed.Select(t => (long)Stopwatch.GetElapsedTime(t.Inbox, t.Arrived).TotalMicroseconds)));
    }

    /// <summary>
    /// When the slow ones of a window were published, as seconds after its first timed publish, with their latency:
    /// stalls at one moment, or spread over the window.
    /// </summary>
    public string Slowest(int first, int count, int top)
    {
        var timed = Timed(first, count).ToList();
        if (timed.Count == 0)
        {
            return "none timed";
        }
        var start = timed.Min(t => t.Published);
        // The wall clock of +0, to line the stalls up with a trace or a log of the runner's.
        var startUtc = DateTime.UtcNow - Stopwatch.GetElapsedTime(start);
        return Text.Inv($"(+0 = {startUtc:HH:mm:ss.fff} UTC) ") + string.Join(", ", timed
            .Select(t => (At: Stopwatch.GetElapsedTime(start, t.Published).TotalSeconds, Ms: Stopwatch.GetElapsedTime(t.Published, t.Arrived).TotalMilliseconds,
                Inbox: t.Inbox > 0 ? Stopwatch.GetElapsedTime(t.Published, t.Inbox).TotalMilliseconds : double.NaN))
            .OrderByDescending(s => s.Ms).Take(top).OrderBy(s => s.At)
            .Select(s => double.IsNaN(s.Inbox) ? Text.Inv($"+{s.At:F2} s {s.Ms:F0} ms") : Text.Inv($"+{s.At:F2} s {s.Ms:F0} ms (inbox at {s.Inbox:F0})")));
    }

    /// <summary>
    /// The timed events among <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> whose command came: when
    /// each went out, reached the inbox (0 when not seen there) and its command arrived.
    /// </summary>
    private IEnumerable<(long Published, long Inbox, long Arrived)> Timed(int first, int count)
    {
        for (var n = first; n < first + count; n++)
        {
            if (IsLastDeposit(n) && _published[AccountOf(n)] is > 0 and var published && _arrived[AccountOf(n)] is > 0 and var arrived)
            {
                yield return (published, _inbox[AccountOf(n)], arrived);
            }
        }
    }

    private static bool IsLastDeposit(int n) => n % ColdWorkload.GroupEvents / ColdWorkload.GroupKeys == ColdWorkload.DepositsPerAccount - 1;

    private static int AccountOf(int n) => (n / ColdWorkload.GroupEvents * ColdWorkload.GroupKeys) + (n % ColdWorkload.GroupKeys);

    /// <summary>The account number a settle command names in its payload (<c>"account":"a123"</c>), or null.</summary>
    private static int? Account(byte[]? command)
    {
        if (command is null)
        {
            return null;
        }
        var reader = new Utf8JsonReader(command);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("account"u8) && reader.Read()
                && reader.TokenType == JsonTokenType.String && reader.GetString() is ['a', .. var digits]
                && int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var account))
            {
                return account;
            }
        }
        return null;
    }
}
