using Runner.Core.Transitions;

namespace Runner.Sagas.Outbox;

/// <summary>A committed outbox item: its store key and the command it stands for.</summary>
internal sealed record OutboxEntry(byte[] Key, CommandMessage Command)
{
    /// <summary>When the relay got it (timestamp of the relay's clock): where dispatch latency starts.</summary>
    public long Since { get; init; }
}
