namespace Runner.Effects.Providers;

/// <summary>
/// Reads secrets from files named after them (Swarm mounts them at <c>/run/secrets/NAME</c>). A
/// secret is read on every use, so a rotated file takes effect on the next attempt without a restart.
/// </summary>
internal sealed class SecretReader
{
    public const string DefaultDirectory = "/run/secrets";

    public SecretReader(string directory = DefaultDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = directory;
    }

    public string Directory { get; }

    /// <summary>
    /// The secret's content without one trailing newline (what <c>echo</c> and most editors add).
    /// Throws <see cref="SecretUnavailableException"/>, whose message names the secret and never holds
    /// any of its content.
    /// </summary>
    public async ValueTask<string> ReadAsync(string name, CancellationToken cancellationToken)
    {
        // A name is a plain file name: a manifest must not be able to read outside the directory.
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.IndexOfAny(['/', '\\', '\0']) >= 0)
        {
            throw new SecretUnavailableException($"secret '{name}' is not a plain file name");
        }
        string text;
        try
        {
            text = await File.ReadAllTextAsync(Path.Combine(Directory, name), cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var reason = ex is FileNotFoundException or DirectoryNotFoundException ? "not found" : "unreadable (" + ex.GetType().Name + ")";
            throw new SecretUnavailableException($"secret '{name}' is {reason} in the secrets directory", ex);
        }
        if (text.EndsWith("\r\n", StringComparison.Ordinal))
        {
            text = text[..^2];
        }
        else if (text.EndsWith('\n'))
        {
            text = text[..^1];
        }
        if (text.Length == 0)
        {
            throw new SecretUnavailableException($"secret '{name}' is empty");
        }
        // A line break would split the header it goes into; HttpClient refuses it only at send time.
        if (text.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw new SecretUnavailableException($"secret '{name}' contains a line break");
        }
        return text;
    }
}

/// <summary>A secret could not be read; the message names it and holds none of its content.</summary>
internal sealed class SecretUnavailableException : Exception
{
    public SecretUnavailableException()
    {
    }

    public SecretUnavailableException(string message)
        : base(message)
    {
    }

    public SecretUnavailableException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
