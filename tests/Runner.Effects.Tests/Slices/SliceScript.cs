using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects.Providers;
using Runner.Effects.Providers.Slices;
using Runner.Slices;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Slices;

/// <summary>
/// A stand-in for runner-slice — a shell script that speaks its <c>--events</c> protocol — and the
/// slice effect and provider around it, on this machine's real namespaces and cgroups. The spec's
/// <c>mode</c> says what it does; every launch appends a line to <c>{Out}/launches</c>.
/// </summary>
internal sealed class SliceScript : IAsyncDisposable
{
    private const string Script = """
        #!/bin/sh
        spec="$2"
        mode=$(sed -n 's/.*"mode":"\([a-z]*\)".*/\1/p' "$spec")
        run=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$spec")
        out=$(sed -n 's/.*"out":"\([^"]*\)".*/\1/p' "$spec")
        [ -n "$out" ] && echo "$run" >> "$out/launches"
        echo "{\"kind\":\"lineage\",\"event\":{\"eventType\":\"START\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"run\":{\"runId\":\"$run\"},\"job\":{\"namespace\":\"acme.orders\",\"name\":\"normalize\"}}}"
        echo "slice $run starting in mode $mode" >&2
        echo "a plain stdout line"
        case "$mode" in
          ok) echo "{\"kind\":\"lineage\",\"event\":{\"eventType\":\"COMPLETE\",\"run\":{\"runId\":\"$run\"},\"job\":{\"namespace\":\"acme.orders\",\"name\":\"normalize\"}}}"
              echo '{"kind":"result","result":{"rows_in":3,"rows_out":2}}'; exit 0 ;;
          malformed) echo '{"kind":"lineage","event":{"eventType":"COMPL'; echo '{"kind":"resul"}'
                     echo '{"kind":"result","result":{"rows_in":1}}'; exit 0 ;;
          noresult) echo '{"kind":"resul'; exit 0 ;;
          slow) sleep 3; echo '{"kind":"result","result":{"slow":true}}'; exit 0 ;;
          secret) echo "{\"kind\":\"result\",\"result\":{\"secret\":\"$(cat /run/secrets/warehouse_token)\"}}"; exit 0 ;;
          fail) echo "reading /data/in/orders.jsonl: no such file" >&2; exit 1 ;;
          invalid) echo "spec.yaml:3: unknown field 'sorce'" >&2; exit 2 ;;
          contract) exit 3 ;;
          aborted) exit 4 ;;
          hang) sleep 600 ;;
          flood) yes "flood line from $run" | head -n 100000; touch "$out/flooding"
                 while [ ! -e "$out/stop-flood" ]; do yes "flood line from $run" | head -n 100000; done
                 echo '{"kind":"result","result":{"flooded":true}}'; exit 0 ;;
        esac
        exit 9
        """;

    public SliceScript()
    {
        Assert.True(OperatingSystem.IsLinux());
        Binary = Dir.File("runner-slice");
        File.WriteAllText(Binary, Script.Replace("\r", string.Empty, StringComparison.Ordinal) + "\n");
        Out = Directory.CreateDirectory(Dir.File("out")).FullName;
        Secrets = Directory.CreateDirectory(Dir.File("secrets")).FullName;
        File.WriteAllText(Path.Combine(Secrets, "warehouse_token"), "tok-123\n");
        if (OperatingSystem.IsLinux())
        {
            File.SetUnixFileMode(Dir.Path, (UnixFileMode)0x1ED); // 0755: the slice uid reaches the script
            File.SetUnixFileMode(Binary, (UnixFileMode)0x1ED);
            File.SetUnixFileMode(Out, (UnixFileMode)0x1FF);    // 0777: and writes its launches
        }
        CgroupBase = "runner-test-" + Guid.NewGuid().ToString("N")[..10];
    }

    public TempDirectory Dir { get; } = new("runner-slice-script");

    public string Binary { get; }

    public string Out { get; }

    public string Secrets { get; }

    public string CgroupBase { get; }

    public int Launches => File.Exists(Path.Combine(Out, "launches")) ? File.ReadAllLines(Path.Combine(Out, "launches")).Length : 0;

    /// <summary><c>slice.launch</c>: may bind under <see cref="Out"/>, may read the secret, defaults and maximums as given.</summary>
    public EffectManifest Effect(SliceResources? maximums = null, bool isolated = true) =>
        new("slice.launch", EffectManifest.SliceProvider, null, "effects.yaml", 1)
        {
            Slice = new SliceEffectConfig([], [Out], ["warehouse_token"],
                new SlicePoolPolicy(isolated, new SliceResources(0.5, 64L * 1024 * 1024, 32, 20_000, "none"), maximums ?? new SliceResources(1, 256L * 1024 * 1024, 128, 60_000, "none")),
                new Dictionary<string, SlicePoolPolicy>()),
            Retry = RetryPolicy.Default with { MaxAttempts = 1 },
            TimeoutMs = 90_000,
            Concurrency = 4,
        };

    public async Task<SliceProvider> ProviderAsync(ILineagePublisher lineage, CancellationToken cancellationToken, string? binary = null)
    {
        var options = new SliceLauncherOptions { RunDirectory = Dir.File("run"), CgroupBase = CgroupBase };
        var launcher = await SliceLauncher.StartAsync(options, NullLogger.Instance, TimeProvider.System, cancellationToken);
        lock (_launchers)
        {
            _launchers.Add(launcher);
        }
        Assert.True(launcher.Capabilities.Isolated, string.Join("; ", launcher.Capabilities.Problems));
        return new SliceProvider(launcher, new SliceCapacity(2, 1L << 30), lineage, new SliceProviderOptions(binary ?? Binary, new SecretReader(Secrets)), NullLogger.Instance);
    }

    public Func<INatsJSContext, Task<SliceProvider>> Provider(CancellationToken cancellationToken) =>
        js => ProviderAsync(new JetStreamLineagePublisher(js), cancellationToken);

    /// <summary>A payload whose spec runs <paramref name="mode"/> as run <paramref name="run"/>.</summary>
    public object Payload(string mode, string run, object? resources = null) => new
    {
        spec = new { slice = "v1", run = new { id = run }, mode, @out = Out },
        resources = resources ?? new { cpu = 0.5, memory = 64L * 1024 * 1024, pids = 32, timeout_ms = 20_000, network = "none" },
        paths = new { rw = new[] { Out } },
        secrets = new[] { "warehouse_token" },
    };

    private readonly List<SliceLauncher> _launchers = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var launcher in _launchers)
        {
            await launcher.DisposeAsync();
        }
        foreach (var directory in Directory.GetDirectories("/sys/fs/cgroup").Select(d => Path.Combine(d, CgroupBase)).Where(Directory.Exists))
        {
            await Runner.Slices.Cgroups.CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, CancellationToken.None);
        }
        Dir.Dispose();
    }
}
