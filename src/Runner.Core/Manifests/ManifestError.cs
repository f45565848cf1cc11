namespace Runner.Core.Manifests;

/// <summary>One problem in one manifest or script, located by file and line (1-based).</summary>
internal sealed record ManifestError(string File, int Line, int Column, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}: {Message}" : $"{File}: {Message}";
}
