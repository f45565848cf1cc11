using Microsoft.Extensions.Logging;

namespace Runner.Messaging;

/// <summary>Messaging log messages; event ids 2000–2099.</summary>
internal static partial class MessagingLog
{
    [LoggerMessage(2000, LogLevel.Information, "stream {Stream} created with subjects {Subjects}")]
    public static partial void StreamCreated(ILogger logger, string stream, string subjects);

    [LoggerMessage(2001, LogLevel.Debug, "consumer {Consumer} attached on stream {Stream} from sequence {StartSequence}")]
    public static partial void ConsumerAttached(ILogger logger, string stream, string consumer, ulong startSequence);

    [LoggerMessage(2003, LogLevel.Warning, "consumer {Consumer} on stream {Stream}: expected delivery {Expected} but got {Delivered}; a delivery was lost in transit, re-attaching from the checkpoint to keep order")]
    public static partial void DeliveryGap(ILogger logger, string stream, string consumer, ulong expected, ulong delivered);

    [LoggerMessage(2002, LogLevel.Warning, "consumer {Consumer} on stream {Stream} failed, retrying in {DelayMs} ms: {Reason}")]
    public static partial void ConsumerFailed(ILogger logger, string stream, string consumer, double delayMs, string reason);

    [LoggerMessage(2004, LogLevel.Warning, "consumer {Consumer} on stream {Stream} delivered nothing for {Seconds} s while the stream holds up to sequence {Stored} past delivery {Delivered}; re-attaching (server's view: {ServerView})")]
    public static partial void ConsumerStalled(ILogger logger, string stream, string consumer, double seconds, ulong delivered, ulong stored, string serverView);

    [LoggerMessage(2005, LogLevel.Debug, "consumer {Consumer} on stream {Stream}: could not check for a stall: {Reason}")]
    public static partial void StallCheckFailed(ILogger logger, string stream, string consumer, string reason);

    [LoggerMessage(2006, LogLevel.Warning, "waiting for JetStream to answer ({What}, try {Attempt}), again in {DelayMs} ms: {Reason}")]
    public static partial void StartupWaiting(ILogger logger, string what, int attempt, double delayMs, string reason);

    [LoggerMessage(2010, LogLevel.Error, "{Component} failed; restarting in {DelayMs} ms")]
    public static partial void LoopFailed(ILogger logger, Exception exception, string component, double delayMs);
}
