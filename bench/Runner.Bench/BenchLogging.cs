using Microsoft.Extensions.Logging;

namespace Runner.Bench;

/// <summary>
/// Logger for the runtime under load: warnings and errors go to stderr (capped), and the LMDB
/// writer's trace event "committed {Batches} batches in {Milliseconds} ms" (id 1002) is captured
/// as numbers — the group-commit profile — without formatting a string. Likewise the effect worker's
/// "command done" event (id 4501, logged after the ack) is handed to <see cref="CommandDone"/> by command id.
/// </summary>
internal sealed class BenchLoggerProvider : ILoggerProvider
{
    private const int MaxPrinted = 40;
    private const string StorageCategory = "Runner.Storage.LmdbStore";
    private const string EffectWorkerCategory = "Runner.Effects.Workers.EffectWorker";
    private const int CommandDoneEvent = 4501;
    private int _printed;

    public CommitLog Commits { get; } = new();

    /// <summary>Called with the command id each time an effect worker has acked a finished command.</summary>
    public Action<string>? CommandDone { get; set; }

    public ILogger CreateLogger(string categoryName) => new BenchLogger(this, categoryName);

    public void Dispose()
    {
    }

    internal void Print(string category, LogLevel level, string message, Exception? exception)
    {
        var n = Interlocked.Increment(ref _printed);
        if (n > MaxPrinted)
        {
            return;
        }
        Console.Error.WriteLine(Text.Inv($"  [{level}] {category}: {message}{(exception is null ? string.Empty : " — " + exception.GetType().Name + ": " + exception.Message)}"));
        if (n == MaxPrinted)
        {
            Console.Error.WriteLine("  (further log lines suppressed)");
        }
    }

    private sealed class BenchLogger(BenchLoggerProvider owner, string category) : ILogger
    {
        private readonly bool _storage = category == StorageCategory;
        private readonly bool _effectWorker = category == EffectWorkerCategory;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) =>
            logLevel >= LogLevel.Warning
            || (_storage && owner.Commits.Recording)
            || (_effectWorker && logLevel == LogLevel.Information && owner.CommandDone is not null);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (_effectWorker && eventId.Id == CommandDoneEvent && state is IReadOnlyList<KeyValuePair<string, object?>> done)
            {
                if (owner.CommandDone is { } callback)
                {
                    foreach (var (key, value) in done)
                    {
                        if (key == "CommandId" && value is string commandId)
                        {
                            callback(commandId);
                            break;
                        }
                    }
                }
                return;
            }
            if (_storage && eventId.Id == 1002 && state is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                var batches = 0;
                var ms = 0.0;
                foreach (var (key, value) in values)
                {
                    if (key == "Batches" && value is int b)
                    {
                        batches = b;
                    }
                    else if (key == "Milliseconds" && value is double m)
                    {
                        ms = m;
                    }
                }
                owner.Commits.Add(batches, ms);
                return;
            }
            if (logLevel >= LogLevel.Warning)
            {
                owner.Print(category, logLevel, formatter(state, exception), exception);
            }
        }
    }
}

/// <summary>Group commits seen while recording: batches folded and milliseconds each took (apply + fsync).</summary>
internal sealed class CommitLog
{
    private readonly Lock _gate = new();
    private readonly List<(int Batches, double Ms)> _entries = [];

    public bool Recording { get; private set; }

    public void Start()
    {
        lock (_gate)
        {
            _entries.Clear();
            Recording = true;
        }
    }

    public List<(int Batches, double Ms)> Stop()
    {
        lock (_gate)
        {
            Recording = false;
            return [.. _entries];
        }
    }

    public void Add(int batches, double ms)
    {
        lock (_gate)
        {
            if (Recording && _entries.Count < 5_000_000)
            {
                _entries.Add((batches, ms));
            }
        }
    }
}
