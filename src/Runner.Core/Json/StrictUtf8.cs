using System.Text;

namespace Runner.Core.Json;

/// <summary>
/// UTF-8 that refuses what it cannot encode or decode exactly (a lone surrogate, bytes that are not UTF-8)
/// with an <see cref="ArgumentException"/>, where <see cref="Encoding.UTF8"/> would put U+FFFD in its place.
/// </summary>
internal static class StrictUtf8
{
    public static readonly UTF8Encoding Encoding = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
