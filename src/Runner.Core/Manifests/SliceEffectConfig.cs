namespace Runner.Core.Manifests;

/// <summary>
/// A slice's resource request, or a pool's defaults or maximums for it. A null field is unset:
/// a request takes the pool's default, a default the built-in one.
/// </summary>
internal sealed record SliceResources(double? Cpu, long? Memory, int? Pids, int? TimeoutMs, string? Network)
{
    public const string NetworkNone = "none";
    public const string NetworkHost = "host";

    public static readonly SliceResources Empty = new(null, null, null, null, null);

    /// <summary>What a slice gets when neither the command nor the manifest says.</summary>
    public static readonly SliceResources BuiltInDefaults = new(1, 512L * 1024 * 1024, 128, 600_000, NetworkNone);

    /// <summary>The most a slice may ask for when the manifest sets no maximum.</summary>
    public static readonly SliceResources BuiltInMaximums = new(4, 4L * 1024 * 1024 * 1024, 1024, 3_600_000, NetworkNone);

    /// <summary>Each field of this, or else of <paramref name="fallback"/>.</summary>
    public SliceResources Or(SliceResources fallback) => new(Cpu ?? fallback.Cpu, Memory ?? fallback.Memory, Pids ?? fallback.Pids, TimeoutMs ?? fallback.TimeoutMs, Network ?? fallback.Network);
}

/// <summary>How one pool runs slices: whether isolation is required, and its defaults and maximums.</summary>
internal sealed record SlicePoolPolicy(bool Isolated, SliceResources Defaults, SliceResources Maximums)
{
    public const string IsolationRequired = "required";
    public const string IsolationNone = "none";

    public static readonly SlicePoolPolicy Default = new(true, SliceResources.BuiltInDefaults, SliceResources.BuiltInMaximums);
}

/// <summary>
/// <c>slice:</c> of a slice effect, with its top-level <c>isolation</c>, <c>defaults</c> and
/// <c>maximums</c>: the host paths a command may declare (under these roots), the secrets it may
/// ask for, and per-pool overrides of the policy.
/// </summary>
internal sealed record SliceEffectConfig(
    IReadOnlyList<string> ReadOnlyRoots,
    IReadOnlyList<string> ReadWriteRoots,
    IReadOnlyList<string> Secrets,
    SlicePoolPolicy Policy,
    IReadOnlyDictionary<string, SlicePoolPolicy> Pools)
{
    public static readonly SliceEffectConfig Default = new([], [], [], SlicePoolPolicy.Default, new Dictionary<string, SlicePoolPolicy>());

    /// <summary>The policy of <paramref name="pool"/>: its own when the manifest names it, else the effect's.</summary>
    public SlicePoolPolicy For(string? pool) => pool is not null && Pools.TryGetValue(pool, out var own) ? own : Policy;
}
