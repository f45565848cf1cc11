namespace Runner.Storage;

/// <summary>A batch could not be committed; nothing of it was written.</summary>
internal sealed class StorageException : Exception
{
    public StorageException(string message, string code, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
    }

    public StorageException()
    {
        Code = "unknown";
    }

    public StorageException(string message)
        : base(message)
    {
        Code = "unknown";
    }

    public StorageException(string message, Exception inner)
        : base(message, inner)
    {
        Code = "unknown";
    }

    /// <summary><c>map_full</c>, <c>disk_full</c>, <c>io</c>, <c>invalid</c> or <c>closed</c>.</summary>
    public string Code { get; }
}
