using System.Text.Json;
using Runner.Core.Ids;

namespace Runner.Sagas.Partitions;

/// <summary>What a committed transition did, for observers (the demo, tests, later metrics).</summary>
internal sealed record TransitionNotice(
    PartitionId Partition,
    InstanceId Instance,
    long Version,
    string EventId,
    string EventType,
    JsonElement State,
    IReadOnlyList<string> CommandIds,
    bool Done)
{
    /// <summary>The state as JSON text, made on each call.</summary>
    public string StateJson => State.GetRawText();
}

/// <summary>Called after a partition batch is durably committed and acknowledged.</summary>
internal interface ITransitionListener
{
    void OnCommitted(IReadOnlyList<TransitionNotice> notices);
}
