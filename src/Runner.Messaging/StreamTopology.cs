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

    /// <summary>Creates or checks every stream; returns each as it is now, by name (its settings may be an operator's, not these).</summary>
    public static async Task<IReadOnlyDictionary<string, INatsJSStream>> EnsureAsync(INatsJSContext js, JetStreamSettings settings, ILogger logger, CancellationToken cancellationToken)
    {
        var streams = new Dictionary<string, INatsJSStream>(StringComparer.Ordinal);
        foreach (var config in Configs(settings))
        {
            if (settings.CreateStreams)
            {
                try
                {
                    // One that exists already (possibly with operator-tuned settings, or just created by a replica
                    // starting beside this one) is left as it is.
                    streams[config.Name!] = await CreateOrOpen.RunAsync(
                        async ct =>
                        {
                            var created = await js.CreateStreamAsync(config, ct);
                            MessagingLog.StreamCreated(logger, config.Name!, string.Join(",", config.Subjects!));
                            return created;
                        },
                        ct => js.GetStreamAsync(config.Name!, cancellationToken: ct),
                        cancellationToken);
                }
                catch (NatsJSApiException refused) when (refused.Error.ErrCode == CreateOrOpen.SubjectsOverlap)
                {
                    throw await SubjectsTakenAsync(js, config, refused, cancellationToken);
                }
            }
            else
            {
                try
                {
                    streams[config.Name!] = await js.GetStreamAsync(config.Name!, cancellationToken: cancellationToken);
                }
                catch (NatsJSApiException ex) when (ex.Error.Code == 404)
                {
                    throw new InvalidOperationException($"stream {config.Name} does not exist and RUNNER_CREATE_STREAMS is false", ex);
                }
            }
        }
        return streams;
    }

    /// <summary>Names the streams that hold the subjects of one that could not be created, and nothing of its name exists.</summary>
    private static async Task<InvalidOperationException> SubjectsTakenAsync(INatsJSContext js, StreamConfig config, NatsJSApiException refused, CancellationToken cancellationToken)
    {
        var holders = new List<string>();
        foreach (var subject in config.Subjects!)
        {
            await foreach (var name in js.ListStreamNamesAsync(subject, cancellationToken))
            {
                holders.Add(name);
            }
        }
        return new InvalidOperationException(
            $"stream {config.Name} cannot be created: its subjects {string.Join(",", config.Subjects!)} are taken by stream {string.Join(", ", holders.Distinct())} ({refused.Error.Description})",
            refused);
    }

    private static StreamConfig Stream(JetStreamSettings settings, string name, string subjects) => new(name, [subjects])
    {
        Storage = StreamConfigStorage.File,
        Retention = StreamConfigRetention.Limits,
        DuplicateWindow = settings.DuplicateWindow,
        NumReplicas = settings.Replicas,
    };
}
