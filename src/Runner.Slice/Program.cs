namespace Runner.Slice;

/// <summary>
/// <c>runner-slice</c>: the program each slice runs. It streams records from a source through
/// transforms to a sink. Commands grow with the streaming core.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["validate", var specFile])
        {
            return ValidateCommand.Run(specFile, Console.Out, Console.Error);
        }
        Console.Error.WriteLine("usage: runner-slice validate SPEC_FILE");
        return 2;
    }
}
