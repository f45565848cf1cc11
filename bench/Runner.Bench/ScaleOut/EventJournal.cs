using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Runner.Bench.ScaleOut;

/// <summary>One ownership or worker log event as a replica logged it, stamped with <see cref="Stopwatch.GetTimestamp"/>.</summary>
/// <param name="Partition">The partition, or -1 for a router lease.</param>
internal sealed record LogEvent(string Replica, int Id, int Partition, string? Key, long At, long Epoch, double Ms, long Records, long Instances, long Bytes);

/// <summary>
/// The events the scale-out phases time hand-overs and restores by, from every replica in the
/// process: the product's <c>[LoggerMessage]</c> events are its only per-partition hooks. Warnings
/// and errors go to stderr (capped); those of a replica marked quiet (a crashed one) are only counted.
/// </summary>
internal sealed class EventJournal
{
    public const int PartitionStarted = 3003;
    public const int Acquired = 3201;
    public const int Fenced = 3202;
    public const int HandingOver = 3204;
    public const int Released = 3205;
    public const int HandOverFailed = 3206;
    public const int Restored = 3209;
    public const int LocalKept = 3210;
    public const int SnapshotWritten = 3213;
    public const int Replaying = 3217;

    private const int MaxPrinted = 40;
    private const string SnapshotsCategory = "Runner.Sagas.Snapshots.PartitionSnapshots";
    private static readonly HashSet<int> s_kept = [PartitionStarted, Acquired, Fenced, HandingOver, Released, HandOverFailed, Restored, LocalKept, SnapshotWritten, Replaying];

    private readonly Lock _gate = new();
    private readonly List<LogEvent> _events = [];
    private readonly HashSet<string> _quiet = new(StringComparer.Ordinal);
    private int _printed;
    private int _warnings;

    /// <summary>Warnings and errors logged by any replica, printed or not.</summary>
    public int Warnings => Volatile.Read(ref _warnings);

    public ILoggerProvider ProviderFor(string replica) => new Provider(this, replica);

    /// <summary>Stops printing the warnings of <paramref name="replica"/> (a crash makes it log every failed write).</summary>
    public void Quiet(string replica)
    {
        lock (_gate)
        {
            _quiet.Add(replica);
        }
    }

    public void Loud(string replica)
    {
        lock (_gate)
        {
            _quiet.Remove(replica);
        }
    }

    /// <summary>Events logged at or after <paramref name="since"/>, in the order they were logged.</summary>
    public List<LogEvent> Since(long since)
    {
        lock (_gate)
        {
            return [.. _events.Where(e => e.At >= since)];
        }
    }

    public int Count(string replica, int id, long since)
    {
        lock (_gate)
        {
            return _events.Count(e => e.Id == id && e.At >= since && string.Equals(e.Replica, replica, StringComparison.Ordinal));
        }
    }

    private void Add(LogEvent entry)
    {
        lock (_gate)
        {
            if (_events.Count < 1_000_000)
            {
                _events.Add(entry);
            }
        }
    }

    private void Print(string replica, string category, LogLevel level, string message, Exception? exception)
    {
        Interlocked.Increment(ref _warnings);
        lock (_gate)
        {
            if (_quiet.Contains(replica))
            {
                return;
            }
        }
        var n = Interlocked.Increment(ref _printed);
        if (n > MaxPrinted)
        {
            return;
        }
        Console.Error.WriteLine(Text.Inv($"  [{level}] replica {replica}, {category}: {message}{(exception is null ? string.Empty : " — " + exception.GetType().Name + ": " + exception.Message)}"));
        if (n == MaxPrinted)
        {
            Console.Error.WriteLine("  (further log lines suppressed)");
        }
    }

    private static LogEvent Read(string replica, int id, IReadOnlyList<KeyValuePair<string, object?>> values, long at)
    {
        int? partition = null;
        string? key = null;
        long epoch = 0, records = 0, instances = 0, bytes = 0;
        double ms = double.NaN;
        foreach (var (name, value) in values)
        {
            switch (name)
            {
                case "Partition" when value is int p:
                    partition = p;
                    break;
                case "Key" when value is string k:
                    key = k;
                    break;
                case "Epoch" when value is long e:
                    epoch = e;
                    break;
                case "Ms" when value is double d:
                    ms = d;
                    break;
                case "Records" when value is long r:
                    records = r;
                    break;
                case "Instances" when value is long i:
                    instances = i;
                    break;
                case "Bytes" when value is long b:
                    bytes = b;
                    break;
                default:
                    break;
            }
        }
        // Lease events name the key: partition.00003 or router.{stream}.
        if (partition is null && key is not null && key.StartsWith("partition.", StringComparison.Ordinal)
            && int.TryParse(key.AsSpan("partition.".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            partition = parsed;
        }
        return new LogEvent(replica, id, partition ?? -1, key, at, epoch, ms, records, instances, bytes);
    }

    private sealed class Provider(EventJournal journal, string replica) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(journal, replica, categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(EventJournal journal, string replica, string category) : ILogger
    {
        private readonly bool _sagas = category.StartsWith("Runner.Sagas", StringComparison.Ordinal);

        // Only the snapshot writer's debug event: the worker logs every transition at debug.
        private readonly bool _snapshots = string.Equals(category, SnapshotsCategory, StringComparison.Ordinal);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) =>
            logLevel >= LogLevel.Warning
            || (_sagas && logLevel == LogLevel.Information)
            || (_snapshots && logLevel == LogLevel.Debug);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var at = Stopwatch.GetTimestamp();
            if (s_kept.Contains(eventId.Id) && state is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                journal.Add(Read(replica, eventId.Id, values, at));
            }
            if (logLevel >= LogLevel.Warning)
            {
                journal.Print(replica, category, logLevel, formatter(state, exception), exception);
            }
        }
    }
}
