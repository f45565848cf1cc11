namespace Runner.Bench.Cold;

/// <summary>A way to start the runner process in <c>--cold</c>: a name and the environment it adds.</summary>
/// <param name="PublishArgs">MSBuild properties (<c>-p:Name=Value</c>) this variant's runner is published with; none: the shared publish.</param>
internal sealed record ColdVariant(string Name, IReadOnlyDictionary<string, string> Environment, IReadOnlyList<string> PublishArgs, bool Explicit)
{
    /// <summary>The runner as published, with nothing added.</summary>
    public static ColdVariant Shipped { get; } = new("shipped", new Dictionary<string, string>(), [], Explicit: false);

    /// <summary><c>NAME</c> or <c>NAME:ITEM,ITEM</c>, each item <c>VAR=VALUE</c> (environment) or <c>-p:Property=Value</c> (publish).</summary>
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
        foreach (var pair in colon < 0 ? [] : text[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (pair.StartsWith("-p:", StringComparison.Ordinal))
            {
                publish.Add(pair);
                continue;
            }
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"--cold-variant '{text}': '{pair}' is not VAR=VALUE");
            }
            environment[pair[..equals]] = pair[(equals + 1)..];
        }
        return new ColdVariant(name, environment, publish, Explicit: true);
    }

    public string Describe() => Environment.Count + PublishArgs.Count == 0
        ? Name + " (as published)"
        : $"{Name} ({string.Join(" ", Environment.Select(e => $"{e.Key}={e.Value}").Concat(PublishArgs.Select(p => "published " + p)))})";
}
