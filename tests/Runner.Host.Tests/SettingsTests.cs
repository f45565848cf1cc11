using Runner.Host.Settings;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

public sealed class SettingsTests
{
    [Fact]
    public void The_runner_ships_the_runtime_settings_its_cold_start_figures_were_measured_with()
    {
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.ChangeExtension(RunnerProcess.Dll, ".runtimeconfig.json")));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.True(properties.GetProperty("System.GC.Server").GetBoolean());
        Assert.False(properties.GetProperty("System.GC.Concurrent").GetBoolean());
        Assert.False(properties.GetProperty("System.Runtime.TieredCompilation.QuickJit").GetBoolean());
        Assert.Equal(0, properties.GetProperty("System.Runtime.TieredCompilation.CallCountingDelayMs").GetInt32());
    }

    [Fact]
    public void Defaults_apply_when_nothing_is_set()
    {
        var (settings, errors) = SettingsLoader.Load(new Dictionary<string, string?>());
        Assert.Empty(errors);
        Assert.Equal(16, settings.Partitions);
        Assert.Equal(RunnerMode.Combined, settings.Mode);
        Assert.True(settings.JetStream.CreateStreams);
        Assert.Equal(TimeSpan.FromMinutes(10), settings.JetStream.DuplicateWindow);
        Assert.Equal("AGGREGATE_EVENTS", settings.JetStream.Streams.AggregateEvents);
    }

    [Fact]
    public void Environment_overrides_the_yaml_file()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("runner.yaml"), "nats_url: nats://file:4222\npartitions: 4\nmode: saga\nack_wait: 45s\nstream_inbox: MY_INBOX\n");
        var (settings, errors) = SettingsLoader.Load(new Dictionary<string, string?>
        {
            ["RUNNER_CONFIG"] = dir.File("runner.yaml"),
            ["RUNNER_PARTITIONS"] = "32",
            ["RUNNER_DUPLICATE_WINDOW"] = "2m",
            ["RUNNER_LMDB_MAP_SIZE"] = "64MiB",
        });
        Assert.Empty(errors);
        Assert.Equal("nats://file:4222", settings.NatsUrl);
        Assert.Equal(32, settings.Partitions);
        Assert.Equal(RunnerMode.Saga, settings.Mode);
        Assert.Equal(TimeSpan.FromSeconds(45), settings.JetStream.AckWait);
        Assert.Equal(TimeSpan.FromMinutes(2), settings.JetStream.DuplicateWindow);
        Assert.Equal("MY_INBOX", settings.JetStream.Streams.Inbox);
        Assert.Equal(64L << 20, settings.LmdbMapSize);
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("runner.yaml"), "partitions: lots\nbogus_key: 1\n");
        var (_, errors) = SettingsLoader.Load(new Dictionary<string, string?>
        {
            ["RUNNER_CONFIG"] = dir.File("runner.yaml"),
            ["RUNNER_NATS_URL"] = "http://wrong",
            ["RUNNER_MODE"] = "turbo",
            ["RUNNER_MAX_DELIVER"] = "0",
            ["RUNNER_ACK_WAIT"] = "soon",
            ["RUNNER_CREATE_STREAMS"] = "yes please",
            ["RUNNER_TYPO"] = "1",
            ["RUNNER_STREAM_INBOX"] = "AGGREGATE_EVENTS",
        });
        Assert.Contains(errors, e => e.Contains("RUNNER_NATS_URL", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("RUNNER_MODE", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("RUNNER_MAX_DELIVER", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("RUNNER_ACK_WAIT", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("RUNNER_CREATE_STREAMS", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("RUNNER_TYPO: unknown setting", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("runner.yaml:1 partitions", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("runner.yaml:2: unknown setting 'bogus_key'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("stream names must all differ", StringComparison.Ordinal));
        Assert.Equal(9, errors.Count);
    }

    [Fact]
    public void The_warm_up_is_on_unless_turned_off_and_reaches_the_saga_runtime()
    {
        var (defaults, none) = SettingsLoader.Load(new Dictionary<string, string?>());
        Assert.Empty(none);
        Assert.True(defaults.SagaOptions().WarmUp);

        var (off, errors) = SettingsLoader.Load(new Dictionary<string, string?> { ["RUNNER_WARM_UP"] = "false" });
        Assert.Empty(errors);
        Assert.False(off.SagaOptions().WarmUp);

        var (_, bad) = SettingsLoader.Load(new Dictionary<string, string?> { ["RUNNER_WARM_UP"] = "later" });
        Assert.Contains(bad, e => e.Contains("RUNNER_WARM_UP", StringComparison.Ordinal) && e.Contains("true or false", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("10m", 600_000)]
    [InlineData("1.5h", 5_400_000)]
    public void Durations_parse_with_units(string text, double ms)
    {
        Assert.True(SettingsLoader.Duration(text, out var value));
        Assert.Equal(ms, value.TotalMilliseconds);
    }

    [Fact]
    public void Effect_worker_settings_are_read_and_reach_the_worker_and_claim_options()
    {
        var (settings, errors) = SettingsLoader.Load(new Dictionary<string, string?>
        {
            ["RUNNER_WORKER_ID"] = "node-7",
            ["RUNNER_POOLS"] = "gpu, eu-west",
            ["RUNNER_SECRETS_DIR"] = "/etc/runner/secrets",
            ["RUNNER_EFFECTS_BUCKET"] = "CLAIMS_PROD",
            ["RUNNER_EFFECT_LEASE"] = "45s",
            ["RUNNER_EFFECT_CLAIM_RETENTION"] = "72h",
            ["RUNNER_EFFECT_CLAIM_AHEAD"] = "0.5",
            ["RUNNER_STREAM_REPLICAS"] = "3",
        });

        Assert.Empty(errors);
        Assert.Equal("/etc/runner/secrets", settings.SecretsDir);
        var claims = settings.ClaimOptions();
        Assert.Equal("node-7", claims.Worker);
        Assert.Equal("CLAIMS_PROD", claims.Bucket);
        Assert.Equal(TimeSpan.FromSeconds(45), claims.Lease);
        Assert.Equal(TimeSpan.FromHours(72), claims.Retention);
        Assert.Equal(3, claims.Replicas);
        Assert.Equal(["gpu", "eu-west"], settings.EffectOptions().Pools);
        Assert.Equal(0.5, settings.EffectOptions().ClaimAhead);
        Assert.Equal(1, SettingsLoader.Load(new Dictionary<string, string?>()).Settings.EffectOptions().ClaimAhead);
    }

    [Fact]
    public void Bad_effect_worker_settings_are_each_reported()
    {
        var (_, errors) = SettingsLoader.Load(new Dictionary<string, string?>
        {
            ["RUNNER_POOLS"] = "gpu,bad pool",
            ["RUNNER_EFFECTS_BUCKET"] = "has.dots",
            ["RUNNER_EFFECT_LEASE"] = "100ms",
            ["RUNNER_EFFECT_CLAIM_RETENTION"] = "10s",
            ["RUNNER_EFFECT_CLAIM_AHEAD"] = "5",
            ["RUNNER_WORKER_ID"] = new string('w', 129),
        });

        foreach (var name in new[] { "RUNNER_POOLS", "RUNNER_EFFECTS_BUCKET", "RUNNER_EFFECT_LEASE", "RUNNER_EFFECT_CLAIM_RETENTION", "RUNNER_EFFECT_CLAIM_AHEAD", "RUNNER_WORKER_ID" })
        {
            Assert.Contains(errors, e => e.Contains(name, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Operations_settings_are_read_with_safe_defaults()
    {
        var (defaults, none) = SettingsLoader.Load(new Dictionary<string, string?>());
        Assert.Empty(none);
        Assert.Equal(["http://127.0.0.1:8080"], defaults.HttpUrls);
        Assert.Null(defaults.AdminTokenFile);
        Assert.Equal(TimeSpan.FromSeconds(45), defaults.ShutdownTimeout);
        Assert.Equal("text", defaults.LogFormat);

        var (settings, errors) = SettingsLoader.Load(new Dictionary<string, string?>
        {
            ["RUNNER_HTTP_URLS"] = "http://0.0.0.0:8080, http://127.0.0.1:9090",
            ["RUNNER_ADMIN_TOKEN_FILE"] = "/run/secrets/runner_admin_token",
            ["RUNNER_SHUTDOWN_TIMEOUT"] = "20s",
            ["RUNNER_LOG_FORMAT"] = "json",
        });
        Assert.Empty(errors);
        Assert.Equal(["http://0.0.0.0:8080", "http://127.0.0.1:9090"], settings.HttpUrls);
        Assert.Equal("/run/secrets/runner_admin_token", settings.AdminTokenFile);
        Assert.Equal(TimeSpan.FromSeconds(20), settings.ShutdownTimeout);
        // Effects still running at a stop without drain get the same deadline.
        Assert.Equal(TimeSpan.FromSeconds(20), settings.EffectOptions().DrainTimeout);
        Assert.Equal("json", settings.LogFormat);
    }

    [Fact]
    public void Bad_operations_settings_are_each_reported()
    {
        var (_, errors) = SettingsLoader.Load(new Dictionary<string, string?>
        {
            ["RUNNER_HTTP_URLS"] = "https://0.0.0.0:8443/x",
            ["RUNNER_SHUTDOWN_TIMEOUT"] = "2h",
            ["RUNNER_LOG_FORMAT"] = "xml",
        });
        Assert.Equal(3, errors.Count);
        foreach (var name in new[] { "RUNNER_HTTP_URLS", "RUNNER_SHUTDOWN_TIMEOUT", "RUNNER_LOG_FORMAT" })
        {
            Assert.Contains(errors, e => e.Contains(name, StringComparison.Ordinal));
        }
    }
}
