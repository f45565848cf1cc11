using Microsoft.Extensions.Logging;

namespace Runner.Messaging;

/// <summary>Messaging log messages; event ids 2000–2099.</summary>
internal static partial class MessagingLog
{
    [LoggerMessage(2000, LogLevel.Information, "stream {Stream} created with subjects {Subjects}")]
    public static partial void StreamCreated(ILogger logger, string stream, string subjects);

    [LoggerMessage(2001, LogLevel.Debug, "consumer {Consumer} attached on stream {Stream}")]
    public static partial void ConsumerAttached(ILogger logger, string stream, string consumer);

    [LoggerMessage(2002, LogLevel.Warning, "consumer {Consumer} on stream {Stream} failed, retrying in {DelayMs} ms: {Reason}")]
    public static partial void ConsumerFailed(ILogger logger, string stream, string consumer, double delayMs, string reason);
}
