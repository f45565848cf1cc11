using System.Security.Cryptography;
using System.Text;

namespace Runner.Host.Http;

/// <summary>
/// The admin bearer token, read once from its secret file. Compared in constant time over SHA-256
/// digests, so neither the content nor the length of the token leaks through timing.
/// </summary>
internal sealed class AdminToken
{
    private readonly byte[]? _digest;

    private AdminToken(byte[]? digest)
    {
        _digest = digest;
    }

    /// <summary>No token configured: admin endpoints are disabled, not open.</summary>
    public bool Enabled => _digest is not null;

    public static AdminToken Disabled { get; } = new(null);

    /// <summary>Reads the token file (surrounding whitespace dropped); throws when it is missing or empty.</summary>
    public static AdminToken FromFile(string path)
    {
        var token = File.ReadAllText(path).Trim();
        if (token.Length == 0)
        {
            throw new InvalidDataException($"admin token file {path} is empty");
        }
        return new AdminToken(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }

    /// <summary>True when <paramref name="authorization"/> is <c>Bearer {the token}</c>.</summary>
    public bool Accepts(string? authorization)
    {
        const string Scheme = "Bearer ";
        if (_digest is null || authorization is null || !authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _digest);
    }
}
