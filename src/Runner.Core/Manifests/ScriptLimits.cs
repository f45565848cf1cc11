namespace Runner.Core.Manifests;

/// <summary>Sandbox limits for one saga's script; defaults suit a small state machine.</summary>
internal sealed record ScriptLimits
{
    public int TimeoutMs { get; init; } = 100;
    public int MaxStatements { get; init; } = 100_000;
    public int MemoryMb { get; init; } = 16;
    public int Recursion { get; init; } = 64;
    public int MaxArraySize { get; init; } = 100_000;
    public int RegexTimeoutMs { get; init; } = 50;
    public int MaxOutputBytes { get; init; } = 256 * 1024;

    public static ScriptLimits Default { get; } = new();
}
