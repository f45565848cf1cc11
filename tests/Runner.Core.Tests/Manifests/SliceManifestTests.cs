using Runner.Core.Manifests;
using Xunit;

namespace Runner.Core.Tests.Manifests;

public sealed class SliceManifestTests
{
    private static ManifestParser.Result Parse(string yaml) => ManifestParser.Parse(yaml, "effects.yaml", _ => null);

    [Fact]
    public void A_slice_effect_reads_roots_secrets_isolation_defaults_maximums_and_pool_overrides()
    {
        var result = Parse("""
            kind: effect
            name: slice.launch
            provider: slice
            slice:
              paths: { ro: [/data/in, /tmp], rw: [/data/out/] }
              secrets: [warehouse_token]
              pools: { dev: { isolation: none }, big: { maximums: { cpu: 8 } } }
            defaults: { cpu: 0.5, memory: 268435456, pids: 64, timeout_ms: 60000, network: none }
            maximums: { cpu: 2, memory: 2147483648, pids: 512, timeout_ms: 600000, network: host }
            """);

        Assert.Empty(result.Errors);
        var effect = Assert.Single(result.Effects);
        var slice = effect.Slice!;
        // /tmp as a root: slices may declare paths under it (not /tmp itself, their own tmpfs).
        Assert.Equal(["/data/in", "/tmp"], slice.ReadOnlyRoots);
        Assert.Equal(["/data/out"], slice.ReadWriteRoots);
        Assert.Equal(["warehouse_token"], slice.Secrets);
        Assert.True(slice.Policy.Isolated);
        Assert.Equal(new SliceResources(0.5, 268435456, 64, 60000, "none"), slice.Policy.Defaults);
        Assert.False(slice.For("dev").Isolated);
        Assert.Equal(8, slice.For("big").Maximums.Cpu);
        Assert.Equal(2147483648, slice.For("big").Maximums.Memory);
        Assert.Equal(slice.Policy, slice.For("other"));
        Assert.Equal(1, effect.Retry.MaxAttempts);
        Assert.Equal(630_000, effect.TimeoutMs);
    }

    [Fact]
    public void Bad_slice_settings_are_reported_with_their_lines()
    {
        var errors = Parse("""
            kind: effect
            name: slice.launch
            provider: slice
            slice:
              paths: { ro: [data/in, /data/../etc], rw: [/run/data, /usr/local/out] }
              color: red
            isolation: sometimes
            defaults: { cpu: -1, memory: 10, network: wifi, gpu: 1 }
            maximums: { pids: 2 }
            """).Errors.Select(e => (e.Line, e.Message)).ToList();

        Assert.Contains(errors, e => e.Line == 5 && e.Message.Contains("'data/in' is not an absolute path", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 5 && e.Message.Contains("not a normalized path", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 5 && e.Message.Contains("'/run/data' is inside /run, which the slice sandbox builds itself", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 5 && e.Message.Contains("'/usr/local/out' is inside /usr", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 6 && e.Message.Contains("color", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 7 && e.Message.Contains("isolation must be 'required' or 'none'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 8 && e.Message.Contains("defaults.cpu", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 8 && e.Message.Contains("defaults.memory", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 8 && e.Message.Contains("defaults.network", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 8 && e.Message.Contains("gpu", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 9 && e.Message.Contains("maximums.pids", StringComparison.Ordinal));
    }

    [Fact]
    public void A_default_over_its_maximum_is_an_error()
    {
        var errors = Parse("""
            kind: effect
            name: slice.launch
            provider: slice
            defaults: { cpu: 3 }
            maximums: { cpu: 2 }
            """).Errors;

        Assert.Contains(errors, e => e.Line == 4 && e.Message.Contains("cpu 3 is over the maximum of 2", StringComparison.Ordinal));
    }
}
