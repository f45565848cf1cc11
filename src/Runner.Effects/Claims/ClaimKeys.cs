using System.Globalization;
using System.Text;

namespace Runner.Effects.Claims;

/// <summary>
/// KV keys for claims: <c>{tenant}.{command_id}</c>, each part escaped so that any text becomes
/// a valid key and no two (tenant, command id) pairs share one. KV keys allow
/// <c>[-/_=.a-zA-Z0-9]</c>; everything else, and <c>=</c> and <c>.</c> themselves, becomes
/// <c>=XX</c> per UTF-8 byte. A key that would be longer than <see cref="MaxLength"/> becomes
/// <c>=h.{sha256 of tenant, 0x1F, command id}</c> (an escaped tenant never starts with <c>=h.</c>:
/// <c>=</c> is always followed by two hex digits).
/// </summary>
internal static class ClaimKeys
{
    /// <summary>Longer keys are hashed: a key travels in a subject, and the server drops a connection over a huge one.</summary>
    public const int MaxLength = 256;

    private static readonly System.Buffers.SearchValues<char> s_plain =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

    public static string For(string tenant, string commandId)
    {
        var key = Escape(tenant) + "." + Escape(commandId);
        if (key.Length <= MaxLength)
        {
            return key;
        }
        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(tenant + "\u001f" + commandId));
        return "=h." + Convert.ToHexStringLower(hash);
    }

    internal static string Escape(string value)
    {
        // Most tenants and command ids need no escaping: then the value is its own escape.
        if (!value.AsSpan().ContainsAnyExcept(s_plain))
        {
            return value;
        }
        var builder = new StringBuilder(value.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            var c = (char)b;
            if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '_')
            {
                builder.Append(c);
            }
            else
            {
                builder.Append('=').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }
}
