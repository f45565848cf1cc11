namespace Runner.Testing;

/// <summary>
/// The <c>runner</c> executable compiled ahead of time (NativeAOT), as the image publishes it: <c>RUNNER_TEST_NATIVE_RUNNER</c>,
/// else <c>runner_native_aot</c> (<see cref="PublishedBinary"/>), which refuses a publish that warns about Runner's code.
/// </summary>
public static class NativeRunner
{
    private static readonly Lazy<Task<string>> s_path = new(() => PublishedBinary.LocateAsync("RUNNER_TEST_NATIVE_RUNNER", "runner_native_aot"));

    public static Task<string> PathAsync() => s_path.Value;
}
