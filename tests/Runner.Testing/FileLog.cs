using Microsoft.Extensions.Logging;

namespace Runner.Testing;

/// <summary>
/// Writes every log line of a test's runtime to the file named by <c>RUNNER_TEST_LOG</c>, when set:
/// for reading what a failing test's runtime did, not for assertions.
/// </summary>
internal sealed class FileLog : ILoggerFactory, ILogger
{
    private static readonly Lock s_gate = new();
    private readonly string _path;

    private FileLog(string path)
    {
        _path = path;
    }

    public static ILoggerFactory? FromEnvironment() =>
        Environment.GetEnvironmentVariable("RUNNER_TEST_LOG") is { Length: > 0 } path ? new FileLog(path) : null;

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
            File.AppendAllText(_path, $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {formatter(state, exception)} {exception?.Message}\n");
        }
    }
}
