using Runner.Core.Subjects;

namespace Runner.Core.Manifests;

/// <summary>A trigger: events on a stream whose subject matches start or advance a saga instance.</summary>
internal sealed record SagaTrigger(string Stream, SubjectPattern Subject, CorrelationExpression Correlation, int Line);

/// <summary>A saga declaration as read from its manifest file.</summary>
internal sealed record SagaManifest(
    string Name,
    string Script,
    IReadOnlyList<SagaTrigger> Triggers,
    ScriptLimits Limits,
    string File,
    int Line)
{
    /// <summary>The author's version label for the saga's behaviour (free text; null when not declared).</summary>
    public string? Version { get; init; }

    /// <summary>
    /// The author declares that this version changes what the script does for live instances: a
    /// reload accepts it even when replaying their history with it diverges (see docs/instances.md).
    /// </summary>
    public bool Migrate { get; init; }

    /// <summary>Absolute path of the script, resolved against the manifest's folder.</summary>
    public string ScriptPath => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(File) ?? ".", Script));
}
