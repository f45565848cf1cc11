namespace Runner.Core.Keys;

/// <summary>The named databases of the store. Each is its own LMDB sub-database.</summary>
internal enum KeySpace
{
    Saga,
    Checkpoint,
    Outbox,
    Schedule,
    Dedupe,
    Quarantine,
    History,
    Held,
}

internal static class KeySpaces
{
    public static IReadOnlyList<KeySpace> All { get; } = Enum.GetValues<KeySpace>();

    public static string DatabaseName(this KeySpace space) => space switch
    {
        KeySpace.Saga => "saga",
        KeySpace.Checkpoint => "checkpoint",
        KeySpace.Outbox => "outbox",
        KeySpace.Schedule => "schedule",
        KeySpace.Dedupe => "dedupe",
        KeySpace.Quarantine => "quarantine",
        KeySpace.History => "history",
        KeySpace.Held => "held",
        _ => throw new ArgumentOutOfRangeException(nameof(space)),
    };
}
