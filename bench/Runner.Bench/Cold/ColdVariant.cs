namespace Runner.Bench.Cold;

/// <summary>A way to start the runner process in <c>--cold</c>: a name and the environment it adds.</summary>
/// <param name="PublishArgs">MSBuild properties (<c>-p:Name=Value</c>) this variant's runner is published with; none: the shared publish.</param>
/// <param name="RunnerDir">A runner published elsewhere (another commit, to compare in one run); null: published here.</param>
internal sealed record ColdVariant(string Name, IReadOnlyDictionary<string, string> Environment, IReadOnlyList<string> PublishArgs, bool Explicit, string? RunnerDir = null)
{
    /// <summary>How <c>docker/Dockerfile</c> publishes the runner: a native executable for this machine.</summary>
    public static IReadOnlyList<string> ImagePublish { get; } =
        [$"-p:RuntimeIdentifier=linux-{(System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "arm64" : "x64")}", "-p:PublishAot=true"];

    /// <summary>The runner as the image publishes it (compiled ahead of time, NativeAOT), with nothing added.</summary>
    public static ColdVariant Shipped { get; } = new("shipped", new Dictionary<string, string>(), ImagePublish, Explicit: false);

    /// <summary>The runner on the JIT, precompiled (ReadyToRun), as <c>dotnet publish src/Runner.Host</c> gives it without the image's setting.</summary>
    public static ColdVariant Jit { get; } = new("jit", new Dictionary<string, string>(), ["-p:PublishAot=false"], Explicit: false);

    /// <summary>
    /// <c>NAME</c> or <c>NAME:ITEM,ITEM</c>, each item <c>VAR=VALUE</c> (environment), <c>-p:Property=Value</c> (publish)
    /// or <c>@DIR</c> (a runner already published in DIR, e.g. from another commit).
    /// </summary>
    public static ColdVariant Parse(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? text : text[..colon];
        if (name.Length == 0)
        {
            throw new FormatException($"--cold-variant '{text}': a name comes first (NAME or NAME:VAR=VALUE,...)");
        }
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var publish = new List<string>();
        string? runnerDir = null;
        foreach (var pair in colon < 0 ? [] : text[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (pair.StartsWith("-p:", StringComparison.Ordinal))
            {
                publish.Add(pair);
                continue;
            }
            if (pair.StartsWith('@'))
            {
                runnerDir = pair[1..];
                continue;
            }
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"--cold-variant '{text}': '{pair}' is not VAR=VALUE");
            }
            environment[pair[..equals]] = pair[(equals + 1)..];
        }
        return new ColdVariant(name, environment, publish, Explicit: true, runnerDir);
    }

    public string Describe() => Environment.Count == 0 && (PublishArgs.Count == 0 || ReferenceEquals(PublishArgs, ImagePublish)) && RunnerDir is null
        ? Name + " (as published)"
        : $"{Name} ({string.Join(" ", Environment.Select(e => $"{e.Key}={e.Value}").Concat(PublishArgs.Select(p => "published " + p)).Concat(RunnerDir is null ? [] : ["runner from " + RunnerDir]))})";
}
