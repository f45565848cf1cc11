using Microsoft.Extensions.Logging;

namespace Runner.Testing;

/// <summary>
/// Writes every log line of a test's runtime to the file named by <c>RUNNER_TEST_LOG</c>, when set,
/// or to a file of its own in the directory <c>RUNNER_TEST_LOG_DIR</c> names (a whole suite's run):
/// for reading what a failing test's runtime did, not for assertions.
/// </summary>
internal sealed class FileLog : ILoggerFactory, ILogger
{
    private static readonly Lock s_gate = new();
    private readonly string _path;
    private readonly string _prefix;

    private FileLog(string path, string prefix)
    {
        _path = path;
        _prefix = prefix;
    }

    public static ILoggerFactory? FromEnvironment() =>
        Environment.GetEnvironmentVariable("RUNNER_TEST_LOG") is { Length: > 0 } path ? new FileLog(path, "")
        : Environment.GetEnvironmentVariable("RUNNER_TEST_LOG_DIR") is { Length: > 0 } dir ? new FileLog(Path.Combine(dir, Guid.NewGuid().ToString("N") + ".log"), "")
        : null;

    /// <summary>The same file, each line marked with <paramref name="name"/> (one replica of several); any other factory as it is.</summary>
    public static ILoggerFactory Named(ILoggerFactory loggers, string name) =>
        loggers is FileLog log ? new FileLog(log._path, name + " ") : loggers;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (s_gate)
        {
            File.AppendAllText(_path, $"{DateTime.UtcNow:HH:mm:ss.fff} {_prefix}{logLevel} {formatter(state, exception)} {exception?.Message}\n");
        }
    }
}
