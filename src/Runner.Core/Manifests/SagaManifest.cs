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
    /// <summary>Absolute path of the script, resolved against the manifest's folder.</summary>
    public string ScriptPath => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(File) ?? ".", Script));
}
