namespace Runner.Slice;

/// <summary>
/// <c>runner-slice</c>: the program each slice runs. It streams records from a source through
/// transforms and a contract to a sink (<c>run</c>), or checks a spec (<c>validate</c>).
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        switch (args)
        {
            case ["validate", var specFile]:
                return ValidateCommand.Run(specFile, Console.Out, Console.Error);
            case ["run", var specFile, .. var rest] when ParseRunOptions(rest, out var events, out var lineage):
                return await RunCommand.RunAsync(specFile, events, lineage, CancellationToken.None).ConfigureAwait(false);
            case ["--version"]:
                Console.WriteLine(typeof(Program).Assembly.GetName().Version?.ToString() ?? "0.0.0");
                return 0;
            default:
                await Console.Error.WriteLineAsync("usage: runner-slice validate SPEC_FILE\n       runner-slice run SPEC_FILE [--events] [--lineage FILE]").ConfigureAwait(false);
                return 2;
        }
    }

    private static bool ParseRunOptions(string[] rest, out bool events, out string? lineage)
    {
        events = false;
        lineage = null;
        for (var i = 0; i < rest.Length; i++)
        {
            switch (rest[i])
            {
                case "--events":
                    events = true;
                    break;
                case "--lineage" when i + 1 < rest.Length:
                    lineage = rest[++i];
                    break;
                default:
                    return false;
            }
        }
        return true;
    }
}
