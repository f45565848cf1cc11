using Runner.Effects.Claims;
using Runner.Effects.Workers;
using Runner.Messaging;
using Runner.Sagas;
using Runner.Storage;

namespace Runner.Host.Settings;

/// <summary>The whole configuration of one Runner process, immutable once loaded.</summary>
internal sealed record RunnerSettings
{
    public string NatsUrl { get; init; } = "nats://127.0.0.1:4222";
    public string DataDir { get; init; } = "data";
    public string Manifests { get; init; } = "manifests";
    public RunnerMode Mode { get; init; } = RunnerMode.Combined;
    public int Partitions { get; init; } = 16;
    public string ConsumerPrefix { get; init; } = "runner";
    public int MaxEventBytes { get; init; } = 512 * 1024;
    public long LmdbMapSize { get; init; } = 256L * 1024 * 1024;
    public long LmdbMaxMapSize { get; init; } = 64L * 1024 * 1024 * 1024;
    public JetStreamSettings JetStream { get; init; } = new();
    /// <summary>How often an owned partition whose checkpoint moved stores a snapshot (and purges its inbox below the older one kept).</summary>
    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Partition and router lease length: a crashed replica's partitions move after about this long.</summary>
    public TimeSpan PartitionLease { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan DedupeRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Most history steps kept per saga instance (0: no history).</summary>
    public int HistoryLimit { get; init; } = 100;

    /// <summary>Whether a saga replica runs a built-in saga on a scratch store before it takes leases.</summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>How long a done instance and its history are kept (in the inbox's time, from the event that finished it).</summary>
    public TimeSpan DoneRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How long a quarantine record is kept.</summary>
    public TimeSpan QuarantineRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Names this process in effect claims; unique per process (host name and pid by default).</summary>
    public string WorkerId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    public IReadOnlyList<string> Pools { get; init; } = [];
    public string SecretsDir { get; init; } = "/run/secrets";
    public string EffectsBucket { get; init; } = "RUNNER_EFFECTS";
    public TimeSpan EffectLease { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan EffectClaimRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>At most this many times an effect's concurrency is claimed ahead of free slots (<see cref="EffectWorkerOptions.ClaimAhead"/>).</summary>
    public double EffectClaimAhead { get; init; } = 1;

    /// <summary>The slice program; <c>runner-slice</c> next to the runner by default.</summary>
    public string SliceBin { get; init; } = Effects.Providers.Slices.SliceProviderOptions.DefaultBinary;

    /// <summary>Cores this node gives slices, shared by all its slice workers.</summary>
    public double SliceCpu { get; init; } = Environment.ProcessorCount;

    /// <summary>Memory this node gives slices: three quarters of what the process may see by default.</summary>
    public long SliceMemory { get; init; } = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;

    public int SliceUid { get; init; } = 65534;
    public int SliceGid { get; init; } = 65534;
    public string SliceRunDir { get; init; } = "/dev/shm/runner-slices";
    public string SliceCgroup { get; init; } = "runner-slices";

    public Slices.SliceLauncherOptions SliceOptions() => new()
    {
        Uid = SliceUid,
        Gid = SliceGid,
        RunDirectory = SliceRunDir,
        CgroupBase = SliceCgroup,
    };

    /// <summary>Where the HTTP endpoints listen (Kestrel URLs, comma-separated); loopback by default.</summary>
    public IReadOnlyList<string> HttpUrls { get; init; } = ["http://127.0.0.1:8080"];

    /// <summary>File holding the admin bearer token; null = admin endpoints disabled.</summary>
    public string? AdminTokenFile { get; init; }

    /// <summary>How long SIGTERM may drain before what is unfinished is abandoned (left unacked).</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>Console log format: text (one line per entry) or json (one object per line, with scopes).</summary>
    public string LogFormat { get; init; } = "text";

    public EffectWorkerOptions EffectOptions() => new()
    {
        JetStream = JetStream,
        ConsumerPrefix = ConsumerPrefix,
        Pools = Pools,
        // A result larger than the saga side accepts would be quarantined there, unseen by its saga.
        MaxResultBytes = MaxEventBytes,
        DrainTimeout = ShutdownTimeout,
        ClaimAhead = EffectClaimAhead,
        CommandMaxAge = EffectClaimRetention > TimeSpan.FromHours(2) ? EffectClaimRetention - TimeSpan.FromHours(1) : EffectClaimRetention / 2,
    };

    public EffectClaimOptions ClaimOptions() => new()
    {
        Bucket = EffectsBucket,
        Replicas = JetStream.Replicas,
        Retention = EffectClaimRetention,
        Lease = EffectLease,
        Worker = WorkerId,
    };

    public SagaRuntimeOptions SagaOptions() => new()
    {
        Partitions = Partitions,
        JetStream = JetStream,
        MaxEventBytes = MaxEventBytes,
        ConsumerPrefix = ConsumerPrefix,
        SnapshotInterval = SnapshotInterval,
        PartitionLease = PartitionLease,
        WorkerId = WorkerId,
        DedupeRetention = DedupeRetention,
        HistoryLimit = HistoryLimit,
        WarmUp = WarmUp,
        DoneRetention = DoneRetention,
        QuarantineRetention = QuarantineRetention,
    };

    public LmdbOptions StoreOptions() => new()
    {
        Path = Path.Combine(DataDir, "lmdb"),
        InitialMapSize = LmdbMapSize,
        MaxMapSize = LmdbMaxMapSize,
    };
}
