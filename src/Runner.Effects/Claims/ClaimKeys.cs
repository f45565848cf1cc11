using System.Globalization;
using System.Text;

namespace Runner.Effects.Claims;

/// <summary>
/// KV keys for claims: <c>{tenant}.{command_id}</c>, each part escaped so that any text becomes
/// a valid key and no two (tenant, command id) pairs share one. KV keys allow
/// <c>[-/_=.a-zA-Z0-9]</c>; everything else, and <c>=</c> and <c>.</c> themselves, becomes
/// <c>=XX</c> per UTF-8 byte.
/// </summary>
internal static class ClaimKeys
{
    public static string For(string tenant, string commandId) => Escape(tenant) + "." + Escape(commandId);

    internal static string Escape(string value)
    {
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
