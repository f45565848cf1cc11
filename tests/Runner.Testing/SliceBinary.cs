namespace Runner.Testing;

/// <summary>The NativeAOT <c>runner-slice</c> that slice sandboxes run: <c>RUNNER_TEST_SLICE_BIN</c>, else <c>runner_slice_aot</c> (<see cref="PublishedBinary"/>).</summary>
public static class SliceBinary
{
    private static readonly Lazy<Task<string>> s_path = new(() => PublishedBinary.LocateAsync("RUNNER_TEST_SLICE_BIN", "runner_slice_aot"));

    public static Task<string> PathAsync() => s_path.Value;
}
