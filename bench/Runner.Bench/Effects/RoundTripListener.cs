using Runner.Sagas.Partitions;

namespace Runner.Bench.Effects;

/// <summary>
/// Marks a round-trip saga's two commits on the instance's timeline (its key is the item name):
/// the first transition (the http command is in the outbox) and the one that finishes it.
/// </summary>
internal sealed class RoundTripListener(Timelines timelines) : ITransitionListener
{
    public const int Published = 0;
    public const int Started = 1;
    public const int Called = 2;
    public const int Done = 3;
    public const int Stages = 4;

    public void OnCommitted(IReadOnlyList<TransitionNotice> notices)
    {
        foreach (var notice in notices)
        {
            var key = notice.Instance.Key.Value;
            if (notice.Done)
            {
                timelines.Mark(key, Done, failed: !notice.StateJson.Contains("\"done\"", StringComparison.Ordinal));
            }
            else if (notice.Version == 1)
            {
                timelines.Mark(key, Started);
            }
        }
    }
}
