namespace Runner.Testing;

/// <summary>
/// The NativeAOT <c>runner-slice</c> that slice sandboxes run: <c>RUNNER_TEST_SLICE_BIN</c> when set
/// (the test script publishes it once for every suite), else published here into the repository's
/// <c>artifacts/runner-slice</c>. A publish that fails fails the test that needed it.
/// </summary>
public static class SliceBinary
{
    private static readonly Lazy<Task<string>> s_path = new(() =>
        PublishedBinary.LocateAsync("RUNNER_TEST_SLICE_BIN", "src/Runner.Slice", "runner-slice", "runner-slice", ["-v", "quiet"]));

    public static Task<string> PathAsync() => s_path.Value;
}
