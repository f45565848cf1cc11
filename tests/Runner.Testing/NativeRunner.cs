namespace Runner.Testing;

/// <summary>
/// The <c>runner</c> executable compiled ahead of time (NativeAOT), as the image publishes it (<c>-p:PublishAot=true</c>):
/// <c>RUNNER_TEST_NATIVE_RUNNER</c> when set (the test script publishes it once for every suite), else published here
/// into the repository's <c>artifacts/runner-native</c>. A publish that fails, or that warns about Runner's own code
/// (reflection the compiler cannot see through: it fails at run time, not here), fails the test that needed it.
/// </summary>
public static partial class NativeRunner
{
    private static readonly Lazy<Task<string>> s_path = new(() =>
        PublishedBinary.LocateAsync("RUNNER_TEST_NATIVE_RUNNER", "src/Runner.Host", "runner-native", "runner", ["-p:PublishAot=true"],
            log => RunnerWarnings(log) is { Count: > 0 } warnings ? $"it warns about Runner's code:\n{string.Join('\n', warnings)}" : null));

    public static Task<string> PathAsync() => s_path.Value;

    /// <summary>
    /// The publish's warnings about what it cannot compile ahead of time, but those that arise inside Jint (its CLR
    /// interop, which the script sandbox turns off): a warning in Runner's code counts even when it names a Jint member.
    /// </summary>
    private static IReadOnlyList<string> RunnerWarnings(string publishOutput) =>
        publishOutput.Split('\n')
            .Where(l => l.Contains("warning IL", StringComparison.Ordinal) && !JintWarning().IsMatch(l))
            .Select(l => l.Trim())
            .Distinct(StringComparer.Ordinal)
            .ToList();

    /// <summary>The compiler's own line for a warning inside Jint (<c>ILC : … warning ILnnnn: Jint.…</c>), or its summary for the assembly.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*ILC : (Trim|AOT) analysis warning IL[0-9]+: Jint\.|Jint\.dll : warning IL[0-9]+: Assembly 'Jint' produced")]
    private static partial System.Text.RegularExpressions.Regex JintWarning();
}
