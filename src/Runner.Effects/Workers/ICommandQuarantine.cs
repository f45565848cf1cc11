using Runner.Messaging;

namespace Runner.Effects.Workers;

/// <summary>
/// Keeps a command that cannot be run (not a command at all, or inconsistent with its subject)
/// with the reason, before the worker terminates it. The host stores it with the other
/// quarantine records.
/// </summary>
internal interface ICommandQuarantine
{
    ValueTask AddAsync(JetStreamMessage msg, string reason, string detail, string? tenant, CancellationToken cancellationToken);
}
