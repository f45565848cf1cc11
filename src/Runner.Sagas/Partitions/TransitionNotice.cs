using Runner.Core.Ids;

namespace Runner.Sagas.Partitions;

/// <summary>What a committed transition did, for observers (the demo, tests, later metrics).</summary>
internal sealed record TransitionNotice(
    PartitionId Partition,
    InstanceId Instance,
    long Version,
    string EventId,
    string EventType,
    string StateJson,
    IReadOnlyList<string> CommandIds,
    bool Done);

/// <summary>Called after a partition batch is durably committed and acknowledged.</summary>
internal interface ITransitionListener
{
    void OnCommitted(IReadOnlyList<TransitionNotice> notices);
}
