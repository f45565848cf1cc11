using Runner.Host.Operations;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>What a reload reports: changes by name, and the ones only a restart applies.</summary>
public sealed class ManifestChangesTests
{
    private const string Effects = """
        kind: effect
        name: work.do
        provider: http
        http: { url: "http://127.0.0.1:9/work" }
        ---
        kind: effect
        name: work.old
        provider: http
        http: { url: "http://127.0.0.1:9/old" }
        """;

    [Fact]
    public void Changes_are_reported_by_name_with_what_needs_a_restart()
    {
        using var dir = new TempDirectory();
        var before = Load(dir.File("v1"), RunnerNode.SagaManifest, RunnerNode.Script("v1"), Effects);
        var after = Load(dir.File("v2"),
            RunnerNode.SagaManifest.Replace("AGGREGATE_EVENTS", "PIPELINE_EVENTS", StringComparison.Ordinal)
                .Replace("aggregate.*.op.*.created", "pipeline.*.op.created", StringComparison.Ordinal).Replace("subject[3]", "subject[1]", StringComparison.Ordinal),
            RunnerNode.Script("v1", effect: "work.new"),
            Effects.Replace("name: work.old\nprovider: http\nhttp: { url: \"http://127.0.0.1:9/old\" }", "name: work.new\nprovider: http\nhttp: { url: \"http://127.0.0.1:9/new\" }", StringComparison.Ordinal)
                .Replace("http: { url: \"http://127.0.0.1:9/work\" }", "http: { url: \"http://127.0.0.1:9/work\" }\npool: gpu", StringComparison.Ordinal));

        var changes = ManifestChanges.Between(before, after);

        Assert.Empty(changes.SagasAdded);
        Assert.Empty(changes.SagasRemoved);
        Assert.Equal(["op"], changes.SagasChanged);
        Assert.Equal(["work.new"], changes.EffectsAdded);
        Assert.Equal(["work.old"], changes.EffectsRemoved);
        Assert.Equal(["work.do"], changes.EffectsChanged);
        Assert.Contains(changes.RestartRequired, r => r.Contains("router for AGGREGATE_EVENTS", StringComparison.Ordinal));
        Assert.Contains(changes.RestartRequired, r => r.Contains("'work.old'", StringComparison.Ordinal));
        Assert.Contains(changes.RestartRequired, r => r.Contains("'work.do': pool", StringComparison.Ordinal));
        Assert.Equal(3, changes.RestartRequired.Count);
    }

    [Fact]
    public void The_same_manifests_in_other_files_change_nothing()
    {
        using var dir = new TempDirectory();
        var before = Load(dir.File("v1"), RunnerNode.SagaManifest, RunnerNode.Script("v1"), Effects);
        // The same declarations, moved down a few lines: where they stand is not a change.
        var after = Load(dir.File("v2"), "\n\n" + RunnerNode.SagaManifest, RunnerNode.Script("v1"), "# moved\n\n" + Effects);

        var changes = ManifestChanges.Between(before, after);

        Assert.NotEqual(before.Hash, after.Hash);
        Assert.Empty(changes.SagasChanged.Concat(changes.EffectsChanged).Concat(changes.EffectsAdded).Concat(changes.EffectsRemoved).Concat(changes.RestartRequired));
    }

    private static ManifestSet Load(string directory, string saga, string script, string effects)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "op.yaml"), saga);
        File.WriteAllText(Path.Combine(directory, "op.js"), script);
        File.WriteAllText(Path.Combine(directory, "effects.yaml"), effects);
        var loaded = ManifestLoader.Load(directory, new StreamNames());
        Assert.True(loaded.Succeeded, string.Join("\n", loaded.Errors));
        return loaded.Set!;
    }
}
