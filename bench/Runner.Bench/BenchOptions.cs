using System.Globalization;
using Runner.Bench.Cold;

namespace Runner.Bench;

/// <summary>Command-line settings of the load command; every loop the bench runs is bounded by these.</summary>
internal sealed record BenchOptions
{
    public int Events { get; init; } = 20_000;
    public int Keys { get; init; } = 1_000;

    /// <summary>Share of (b)'s events that go to one more key of their own (a hot instance) beside the <see cref="Keys"/>; 0: none.</summary>
    public double HotShare { get; init; }

    /// <summary>The key of (b)'s event <paramref name="i"/>: every (1 / <see cref="HotShare"/>)-th goes to the hot key, <c>k{Keys}</c>.</summary>
    public int KeyOf(int i) => HotShare > 0 && i % Math.Max(1, (int)Math.Round(1 / HotShare)) == 0 ? Keys : i % Keys;
    public int Partitions { get; init; } = 16;
    public int Rate { get; init; } = 2_000;
    public int Seconds { get; init; } = 10;

    /// <summary>Publishes kept in flight by the pipelined publishers (baseline and end to end).</summary>
    public int Window { get; init; } = 4_096;

    /// <summary>JetStream batch of the router and partition consumers (<c>JetStreamSettings.Batch</c>).</summary>
    public int Batch { get; init; } = 256;

    /// <summary>LMDB fsync on every commit (production default). False shows what fsync costs.</summary>
    public bool Durable { get; init; } = true;

    /// <summary>How long the LMDB writer holds the relay's deletes for a transition to share their commit, ms (null: the store's default).</summary>
    public int? CompanyWindowMs { get; init; }

    public int Warmup { get; init; } = 10_000;

    /// <summary>Hard limit for the whole run; every wait inside is bounded by it as well.</summary>
    public int TimeoutSeconds { get; init; } = 600;

    /// <summary>Saga instances started in the round-trip phase (d), each one event → http effect → result → done.</summary>
    public int RoundTrips { get; init; } = 5_000;

    /// <summary>Commands per run of the claim phase (e): plain consume+ack, one effect worker, two workers.</summary>
    public int Commands { get; init; } = 10_000;

    /// <summary>Seconds between a partition's snapshots in the in-process phases (<c>RUNNER_SNAPSHOT_INTERVAL</c>); null keeps the default.</summary>
    public int? SnapshotIntervalSeconds { get; init; }

    /// <summary>History steps kept per instance (<c>RUNNER_HISTORY_LIMIT</c>); null keeps the default.</summary>
    public int? HistoryLimit { get; init; }

    /// <summary>The effects' <c>concurrency</c> (commands one worker runs at once); null keeps the manifest default.</summary>
    public int? EffectConcurrency { get; init; }

    /// <summary>The effect workers' claim-ahead factor (<c>RUNNER_EFFECT_CLAIM_AHEAD</c>); null keeps the default.</summary>
    public double? EffectClaimAhead { get; init; }

    /// <summary>Claim-ahead factors (e)(ii) alternates between, after the usual phases, for <see cref="AbRounds"/> rounds.</summary>
    public double[] ClaimAheadAb { get; init; } = [];

    /// <summary>How long the loopback upstream of (d) waits before each answer, ms (an upstream's own latency).</summary>
    public int UpstreamDelayMs { get; init; }

    /// <summary>Rounds of an alternating comparison (<c>--claim-ahead-ab</c>).</summary>
    public int AbRounds { get; init; } = 4;

    public bool Baseline { get; init; } = true;
    public bool Throughput { get; init; } = true;
    public bool Latency { get; init; } = true;
    public bool Effects { get; init; } = true;

    /// <summary>Diagnostic: list what the JIT compiles during the throughput phase.</summary>
    public bool JitLog { get; init; }

    /// <summary>Diagnostic: per-step CPU and allocation on one thread, no server (then exit).</summary>
    public bool Micro { get; init; }

    /// <summary>Diagnostic: router alone, then workers + relay alone, each on a full stream.</summary>
    public bool Isolate { get; init; }

    /// <summary>Slice launch latency only (no server): plain, unshare, isolated with cgroup join, NativeAOT runner-slice.</summary>
    public bool Launch { get; init; }

    /// <summary>Launches per case of <see cref="Launch"/>.</summary>
    public int Launches { get; init; } = 200;

    /// <summary>Pause between launches of <see cref="Launch"/> (not timed): commands that arrive apart rather than back to back.</summary>
    public int LaunchGapMs { get; init; } = 50;

    /// <summary>A NativeAOT runner-slice for <see cref="Launch"/>.</summary>
    public string? SliceBin { get; init; }

    /// <summary>Diagnostic: router redelivery and relay re-publish against the duplicate window.</summary>
    public bool CheckDuplicates { get; init; }

    /// <summary>Saga scale-out only (hand-over, crash failover, restore, snapshot cost), on a nats-server of its own; the other phases are not run.</summary>
    public bool ScaleOut { get; init; }

    /// <summary>Which of the scale-out phases (1–4) run.</summary>
    public IReadOnlyList<int> ScaleOutPhases { get; init; } = [1, 2, 3, 4];

    /// <summary>Rounds of (1): b joins and takes half the partitions, then drains and gives them back.</summary>
    public int HandOverRounds { get; init; } = 3;

    /// <summary>Lease lengths (seconds) (2) is run with, one run each.</summary>
    public IReadOnlyList<int> FailoverLeases { get; init; } = [2, 10];

    /// <summary>Instances in the partition (3) snapshots and restores.</summary>
    public int RestoreInstances { get; init; } = 100_000;

    /// <summary>Fresh runner processes only: first 20,000 events against the process's own steady state; the other phases are not run.</summary>
    public bool Cold { get; init; }

    /// <summary>Events each fresh process drains in <see cref="Cold"/>.</summary>
    public int ColdEvents { get; init; } = 200_000;

    /// <summary>How many times <see cref="Cold"/> runs every variant, the variants taking turns; the summary gives the median and range.</summary>
    public int ColdRounds { get; init; } = 1;

    /// <summary>What <see cref="Cold"/> runs each fresh process through: <c>backlog</c>, <c>pipelined</c>, <c>paced</c>.</summary>
    public IReadOnlyList<string> ColdModes { get; init; } = ["backlog", "pipelined"];

    /// <summary>The paced mode of <see cref="Cold"/> also times each event's inbox message (a core subscription to the inbox subjects), splitting publish → command at the router's hop.</summary>
    public bool PacedHops { get; init; }

    /// <summary>A published runner to start in <see cref="Cold"/>; null publishes <c>src/Runner.Host</c> first.</summary>
    public string? RunnerDir { get; init; }

    /// <summary>Variants of <see cref="Cold"/>: a name and the environment it adds to the runner process.</summary>
    public IReadOnlyList<ColdVariant> ColdVariants { get; init; } = [ColdVariant.Shipped, ColdVariant.Jit];

    public const string Usage = """
        Runner.Bench — load command for the saga runner (real nats-server, real LMDB).

          --launch          slice launch latency only, no server (--launches N, default 200; --launch-gap-ms N,
                            pause between launches, default 50, 0 = back to back; --slice-bin PATH)
          --events N        events in the throughput phases (default 20000)
          --keys K          distinct correlation keys (default 1000)
          --partitions P    inbox partitions (default 16)
          --rate R          paced rate of the latency phase, events/s (default 2000)
          --seconds S       length of the latency phase (default 10)
          --window W        pipelined publishes in flight (default 4096)
          --batch B         router/partition consumer batch (default 256)
          --durable BOOL    LMDB fsync per commit (default true)
          --company-window-ms N  how long the relay's deletes may wait to share a transition's commit (default: the store's, 2)
          --history-limit N history steps kept per instance, as RUNNER_HISTORY_LIMIT (default 100; 0 = none)
          --snapshot-interval S  seconds between a partition's snapshots, as RUNNER_SNAPSHOT_INTERVAL (default 30)
          --hot-share F     share of (b)'s events that go to one hot key beside the K keys (default 0)
          --warmup N        warm-up events through the runtime, not measured (default 10000)
          --round-trips N   saga instances in the effect round-trip phase (d) (default 5000)
          --commands M      commands per run of the claim phase (e) (default 10000)
          --effect-concurrency C  commands one effect worker runs at once (default: the manifest default, 64)
          --effect-claim-ahead F  claim ahead at most F x concurrency, as RUNNER_EFFECT_CLAIM_AHEAD (default 1; 0 = off)
          --claim-ahead-ab F,G  after (e): plain consume+ack and (e)(ii) alternating between these claim-ahead factors, in one process
          --ab-rounds R     rounds of --claim-ahead-ab (default 4)
          --upstream-delay-ms D  the loopback upstream of (d) answers after D ms (default 0)
          --timeout SEC     overall time limit (default 600)
          --skip-baseline | --skip-throughput | --skip-latency | --skip-effects
          --jit-log         diagnostic: list the methods the JIT compiles during (b)
          --micro           diagnostic: CPU/allocation per in-process step on one thread, no server
          --isolate         diagnostic: router alone, then workers + relay alone, on pre-filled streams
          --check-duplicates diagnostic: router redelivery / relay re-publish of already-stored messages
          --scale-out       saga replicas only (the other phases are not run): (1) hand-over per partition,
                            (2) crash failover, (3) restore onto an empty volume + replay, (4) throughput
                            with snapshots on/off; --scale-out-phases 1,2,3,4; --handover-rounds N (default 3);
                            --failover-leases 2,10 (seconds); --restore-instances N (default 100000)
          --cold            fresh `runner serve` processes only (the other phases are not run): the first 20,000
                            events against the same process's steady state, on a backlog and pipelined;
                            --cold-events N (default 200000); --cold-rounds N (default 1: every variant N
                            times, taking turns; the summary gives median and range); --runner DIR (a published runner; default:
                            publish src/Runner.Host first); --cold-variant NAME[:ITEM,...] (repeatable; an
                            item is VAR=VALUE, -p:Property=Value or @DIR, a runner published from elsewhere;
                            default: shipped, as the image publishes it (NativeAOT), and jit, the
                            precompiled build on the JIT (-p:PublishAot=false));
                            --cold-modes backlog,pipelined,paced (default backlog,pipelined; paced: --rate R
                            events/s for --seconds S into the fresh process, then --cold-events at full speed,
                            then R/s for S again: publish → command p50/p99 cold and warm; --paced-hops splits it
                            at the inbox, from a core subscription to the inbox subjects; roundtrip: (d)'s saga
                            round trips in the fresh process, combined mode, against a loopback upstream here,
                            two bursts of --round-trips instances, first and warm; floor: the tally saga's
                            traffic alone on the same backlog, in this process through Runner's transport, no
                            runner: its CPU per event beside nats-server's, once a round)

        nats-server: RUNNER_TEST_NATS_URL if set, else the nats-server binary on a free 127.0.0.1 port.
        """;

    public static BenchOptions? Parse(string[] args, TextWriter error)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Next()
            {
                if (i + 1 >= args.Length)
                {
                    throw new FormatException($"{name} needs a value");
                }
                return args[++i];
            }
            static string[] Modes(string list)
            {
                var modes = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                return modes.Length > 0 && modes.All(m => m is "backlog" or "pipelined" or "paced" or "roundtrip" or "floor")
                    ? modes
                    : throw new FormatException($"--cold-modes takes backlog, pipelined, paced, roundtrip and/or floor, comma-separated, not '{list}'");
            }

            int[] Ints(int min, int max)
            {
                var text = Next();
                var values = new List<int>();
                foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
                    {
                        throw new FormatException($"{name}: '{text}' is not a comma-separated list of integers in [{min}, {max}]");
                    }
                    values.Add(value);
                }
                return values.Count > 0 ? [.. values] : throw new FormatException($"{name} needs at least one value");
            }
            double[] Fractions(double min, double max)
            {
                var text = Next();
                var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(part => double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max ? v : double.NaN).ToArray();
                return values.Length >= 2 && !values.Any(double.IsNaN) ? values
                    : throw new FormatException($"{name}: '{text}' is not a comma-separated list of at least two numbers in [{min}, {max}]");
            }
            double Fraction(double min, double max)
            {
                var text = Next();
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
                {
                    throw new FormatException($"{name}: '{text}' is not a number in [{min}, {max}]");
                }
                return value;
            }
            int Int(int min)
            {
                var text = Next();
                if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min)
                {
                    throw new FormatException($"{name}: '{text}' is not an integer >= {min}");
                }
                return value;
            }
            try
            {
                options = name switch
                {
                    "--events" => options with { Events = Int(1) },
                    "--keys" => options with { Keys = Int(1) },
                    "--hot-share" => options with { HotShare = Fraction(0, 1) },
                    "--partitions" => options with { Partitions = Int(1) },
                    "--rate" => options with { Rate = Int(1) },
                    "--seconds" => options with { Seconds = Int(1) },
                    "--window" => options with { Window = Int(1) },
                    "--batch" => options with { Batch = Int(1) },
                    "--history-limit" => options with { HistoryLimit = Int(0) },
                    "--snapshot-interval" => options with { SnapshotIntervalSeconds = Int(1) },
                    "--durable" => options with { Durable = bool.Parse(Next()) },
                    "--company-window-ms" => options with { CompanyWindowMs = Int(0) },
                    "--warmup" => options with { Warmup = Int(0) },
                    "--timeout" => options with { TimeoutSeconds = Int(10) },
                    "--round-trips" => options with { RoundTrips = Int(1) },
                    "--commands" => options with { Commands = Int(1) },
                    "--effect-concurrency" => options with { EffectConcurrency = Int(1) },
                    "--effect-claim-ahead" => options with { EffectClaimAhead = Fraction(0, 4) },
                    "--claim-ahead-ab" => options with { ClaimAheadAb = Fractions(0, 4) },
                    "--ab-rounds" => options with { AbRounds = Int(1) },
                    "--upstream-delay-ms" => options with { UpstreamDelayMs = Int(0) },
                    "--skip-baseline" => options with { Baseline = false },
                    "--skip-throughput" => options with { Throughput = false },
                    "--skip-latency" => options with { Latency = false },
                    "--skip-effects" => options with { Effects = false },
                    "--jit-log" => options with { JitLog = true },
                    "--micro" => options with { Micro = true },
                    "--isolate" => options with { Isolate = true },
                    "--check-duplicates" => options with { CheckDuplicates = true },
                    "--scale-out" => options with { ScaleOut = true },
                    "--scale-out-phases" => options with { ScaleOutPhases = Ints(1, 4) },
                    "--handover-rounds" => options with { HandOverRounds = Int(1) },
                    "--failover-leases" => options with { FailoverLeases = Ints(1, 60) },
                    "--restore-instances" => options with { RestoreInstances = Int(1) },
                    "--cold" => options with { Cold = true },
                    "--cold-events" => options with { ColdEvents = Int(25_000) },
                    "--cold-rounds" => options with { ColdRounds = Int(1) },
                    "--cold-modes" => options with { ColdModes = Modes(Next()) },
                    "--runner" => options with { RunnerDir = Next() },
                    "--paced-hops" => options with { PacedHops = true },
                    "--cold-variant" => options with { ColdVariants = [.. options.ColdVariants.Where(v => v.Explicit || ReferenceEquals(v, ColdVariant.Shipped)), ColdVariant.Parse(Next())] },
                    "--launch" => options with { Launch = true },
                    "--launches" => options with { Launches = Int(1) },
                    "--launch-gap-ms" => options with { LaunchGapMs = Int(0) },
                    "--slice-bin" => options with { SliceBin = Next() },
                    "-h" or "--help" => null,
                    _ => throw new FormatException($"unknown argument '{name}'"),
                };
            }
            catch (FormatException ex)
            {
                error.WriteLine(ex.Message);
                error.WriteLine(Usage);
                return null;
            }
            if (options is null)
            {
                error.WriteLine(Usage);
                return null;
            }
        }
        return options;
    }
}
