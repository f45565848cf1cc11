using Runner.Scripting;

namespace Runner.Sagas.Testing;

/// <summary>
/// A saga test: events for one instance of <see cref="Saga"/>, each with what it must do
/// (docs/saga-testing.md). Read by <see cref="GoldenFileReader"/>, written from history by
/// <see cref="GoldenFileWriter"/>, run by <see cref="GoldenRunner"/>.
/// </summary>
/// <param name="Manifests">The manifest directory the file names, relative to the file; null when it names none.</param>
/// <param name="InitialStateJson">The state before the first step (JSON); null for a new instance.</param>
internal sealed record GoldenFile(
    string Path,
    string Saga,
    string? Manifests,
    string Tenant,
    string Key,
    string? InitialStateJson,
    IReadOnlyList<GoldenStep> Steps)
{
    public const string DefaultTenant = "test";
    public const string DefaultKey = "k-1";
}

/// <summary>One event of a golden file and what it must do.</summary>
/// <param name="Number">1-based position in the file.</param>
/// <param name="Line">Where the step starts in the file.</param>
/// <param name="Handler">A forced handler; null lets the event decide, as in the worker.</param>
/// <param name="Expect">Only what it holds is checked.</param>
internal sealed record GoldenStep(int Number, int Line, StepEvent Event, ScriptHandler? Handler, StepOutcome Expect);
