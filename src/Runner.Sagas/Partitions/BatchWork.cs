using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Core.Transitions;
using Runner.Sagas.Outbox;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>Everything one inbox batch produces before it commits.</summary>
internal sealed class BatchWork(PartitionId partition)
{
    public PartitionId Partition { get; } = partition;

    public WriteBatch Batch { get; } = new();

    /// <summary>Instances as this batch left them, so later events in the batch see earlier transitions.</summary>
    public Dictionary<InstanceId, SagaInstanceRecord> Instances { get; } = [];

    public HashSet<string> SeenEvents { get; } = new(StringComparer.Ordinal);

    public List<OutboxEntry> Outbox { get; } = [];

    public List<INatsJSMsg<byte[]>> Terminated { get; } = [];

    public List<TransitionNotice> Notices { get; } = [];
}
