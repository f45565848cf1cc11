using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Runner.Core.Keys;

/// <summary>
/// Strings joined by the unit separator (0x1F) as UTF-8, written straight into their buffer with no
/// joined string on the way: the composition of store keys, and what command ids and seeds hash.
/// These run for every transition.
/// </summary>
internal static class JoinedUtf8
{
    /// <summary>Joined inputs up to this many bytes are hashed from the stack, longer ones from a rented buffer.</summary>
    private const int StackBytes = 1024;

    /// <summary>The UTF-8 of the parts joined by <see cref="StoreKeys.Separator"/>.</summary>
    public static byte[] ToArray(params ReadOnlySpan<string> parts)
    {
        var bytes = new byte[Length(parts)];
        Write(parts, bytes);
        return bytes;
    }

    /// <summary>
    /// The UTF-8 of the parts and then <paramref name="number"/> as 20 digits (<c>D20</c>, so numbers sort
    /// as their keys do) joined by <see cref="StoreKeys.Separator"/>, without making the number's text.
    /// </summary>
    public static byte[] ToArray(ReadOnlySpan<string> parts, ulong number)
    {
        const int Digits = 20;
        var length = Length(parts) + 1 + Digits;
        var bytes = new byte[length];
        var at = Write(parts, bytes);
        bytes[at++] = (byte)StoreKeys.Separator;
        if (!System.Buffers.Text.Utf8Formatter.TryFormat(number, bytes.AsSpan(at), out var written, new System.Buffers.StandardFormat('D', Digits)) || written != Digits)
        {
            throw new InvalidOperationException($"{number} does not fit {Digits} digits");
        }
        return bytes;
    }

    /// <summary>The SHA-256 of the UTF-8 of the parts joined by <see cref="StoreKeys.Separator"/> (of one part: of its UTF-8).</summary>
    public static void Sha256(ReadOnlySpan<string> parts, Span<byte> hash)
    {
        var length = Length(parts);
        if (length <= StackBytes)
        {
            Span<byte> text = stackalloc byte[StackBytes];
            SHA256.HashData(text[..Write(parts, text)], hash);
            return;
        }
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            SHA256.HashData(rented.AsSpan(0, Write(parts, rented)), hash);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static int Length(ReadOnlySpan<string> parts)
    {
        var length = parts.Length - 1;
        foreach (var part in parts)
        {
            length += Encoding.UTF8.GetByteCount(part);
        }
        return length;
    }

    private static int Write(ReadOnlySpan<string> parts, Span<byte> into)
    {
        var at = 0;
        for (var i = 0; i < parts.Length; i++)
        {
            if (i > 0)
            {
                into[at++] = (byte)StoreKeys.Separator;
            }
            at += Encoding.UTF8.GetBytes(parts[i], into[at..]);
        }
        return at;
    }
}
