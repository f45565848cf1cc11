using System.Text;
using System.Text.Json;
using Runner.Core.Manifests;

namespace Runner.Effects.Providers;

/// <summary>Sending a request and classifying what comes back.</summary>
internal sealed partial class HttpExchange
{
    /// <summary>Largest successful response body taken as the effect result.</summary>
    public const int MaxResponseBytes = 1 << 20;

    private const int ErrorBodyChars = 512;

    private async ValueTask<AttemptOutcome> ExchangeAsync(HttpRequestMessage message, CancellationToken cancellationToken)
    {
        var target = $"{message.Method} {Authority(message.RequestUri!)}";
        var client = clients.CreateClient(ClientName);
        // The per-attempt timeout is the resilience pipeline's; HttpClient's own (100 s) must not cut in first.
        client.Timeout = Timeout.InfiniteTimeSpan;
        try
        {
            using var response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            return await ClassifyAsync(response, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            return AttemptOutcome.Transient(RetryOn.Connection, EffectErrorCodes.ConnectionFailed, $"{target}: {ex.Message}");
        }
        catch (IOException ex)
        {
            return AttemptOutcome.Transient(RetryOn.Connection, EffectErrorCodes.ConnectionFailed, $"{target}: {ex.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return AttemptOutcome.Transient(RetryOn.Timeout, EffectErrorCodes.Timeout, $"{target}: the HTTP client timed out");
        }
    }

    internal static async ValueTask<AttemptOutcome> ClassifyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        if (status is >= 200 and < 300)
        {
            var (body, complete) = response.Content.Headers.ContentLength > MaxResponseBytes
                ? ([], false)
                : await ReadAsync(response.Content, MaxResponseBytes, cancellationToken);
            return complete
                ? AttemptOutcome.Success(ResultJson(body))
                : AttemptOutcome.Permanent(EffectErrorCodes.ResponseTooLarge, $"HTTP {status}: the response body is larger than {MaxResponseBytes} bytes", status);
        }
        // Enough bytes for 512 characters of any UTF-8 text.
        var (head, _) = await ReadAsync(response.Content, ErrorBodyChars * 4, cancellationToken);
        var text = Encoding.UTF8.GetString(head);
        var message = $"HTTP {status} {response.ReasonPhrase}: {(text.Length > ErrorBodyChars ? text[..ErrorBodyChars] : text)}";
        return status switch
        {
            429 => AttemptOutcome.Transient(RetryOn.TooManyRequests, EffectErrorCodes.Http(status), message, status) with { RetryAfter = RetryAfter(response) },
            >= 500 => AttemptOutcome.Transient(RetryOn.ServerError, EffectErrorCodes.Http(status), message, status) with { RetryAfter = RetryAfter(response) },
            _ => AttemptOutcome.Permanent(EffectErrorCodes.Http(status), message, status),
        };
    }

    /// <summary>
    /// <c>Retry-After</c> as a delay, when the upstream sent one: seconds, or an HTTP date measured
    /// against the response's own <c>Date</c> (so neither clock's skew matters).
    /// </summary>
    private static TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } when response.Headers.Date is { } sent => date > sent ? date - sent : TimeSpan.Zero,
        _ => null,
    };

    /// <summary>At most <paramref name="limit"/> bytes of the body, and whether that was all of it.</summary>
    private static async ValueTask<(byte[] Body, bool Complete)> ReadAsync(HttpContent content, int limit, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[content.Headers.ContentLength is { } expected && expected < limit ? (int)expected + 1 : Math.Min(limit + 1, 16 * 1024)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > limit)
                {
                    return (buffer[..limit], false);
                }
                Array.Resize(ref buffer, Math.Min(limit + 1, buffer.Length * 2));
            }
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return (buffer[..length], true);
            }
            length += read;
        }
    }

    /// <summary>The body if it is JSON; otherwise the body as a JSON string; <c>null</c> when empty.</summary>
    private static string ResultJson(byte[] body)
    {
        ReadOnlySpan<byte> bytes = body;
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            bytes = bytes[3..];
        }
        if (bytes.Trim(" \t\r\n"u8).IsEmpty)
        {
            return "null";
        }
        try
        {
            var reader = new Utf8JsonReader(bytes);
            while (reader.Read())
            {
            }
            return Encoding.UTF8.GetString(bytes);
        }
        catch (JsonException)
        {
            var text = Encoding.UTF8.GetString(bytes);
            return Encoding.UTF8.GetString(WriteJson(text, static (writer, value) => writer.WriteStringValue(value)));
        }
    }
}
