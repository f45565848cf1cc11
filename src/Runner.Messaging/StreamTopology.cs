using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>The streams of design §2, created when missing (development) or checked (production).</summary>
internal static class StreamTopology
{
    public static IReadOnlyList<StreamConfig> Configs(JetStreamSettings settings)
    {
        var names = settings.Streams;
        return
        [
            Stream(settings, names.AggregateEvents, "aggregate.>"),
            Stream(settings, names.PipelineEvents, "pipeline.>"),
            Stream(settings, names.WorkflowCommands, "workflow.cmd.>"),
            Stream(settings, names.WorkflowEvents, "workflow.evt.>"),
            Stream(settings, names.Lineage, "lineage.>"),
            Stream(settings, names.Inbox, Core.Subjects.Subjects.InboxPrefix + ".>"),
        ];
    }

    public static async Task EnsureAsync(INatsJSContext js, JetStreamSettings settings, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var config in Configs(settings))
        {
            if (settings.CreateStreams)
            {
                try
                {
                    await js.CreateStreamAsync(config, cancellationToken);
                    MessagingLog.StreamCreated(logger, config.Name!, string.Join(",", config.Subjects!));
                }
                catch (NatsJSApiException ex) when (ex.Error.ErrCode == 10058)
                {
                    // Exists already (possibly with operator-tuned settings): leave it as it is.
                }
            }
            else
            {
                try
                {
                    await js.GetStreamAsync(config.Name!, cancellationToken: cancellationToken);
                }
                catch (NatsJSApiException ex) when (ex.Error.Code == 404)
                {
                    throw new InvalidOperationException($"stream {config.Name} does not exist and RUNNER_CREATE_STREAMS is false", ex);
                }
            }
        }
    }

    private static StreamConfig Stream(JetStreamSettings settings, string name, string subjects) => new(name, [subjects])
    {
        Storage = StreamConfigStorage.File,
        Retention = StreamConfigRetention.Limits,
        DuplicateWindow = settings.DuplicateWindow,
        NumReplicas = settings.Replicas,
    };
}
