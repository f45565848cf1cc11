using System.Buffers;
using System.Net.Http.Headers;
using System.Text.Json;
using Runner.Core.Manifests;
using Runner.Core.Transitions;

namespace Runner.Effects.Providers;

/// <summary>One HTTP request an effect attempt sends: what differs between the http and gateway providers.</summary>
internal sealed record OutgoingRequest(
    HttpMethod Method,
    string CommandUrl,
    IReadOnlyDictionary<string, HeaderValue> ManifestHeaders,
    IReadOnlyList<KeyValuePair<string, string>> RunnerHeaders,
    byte[]? JsonBody);

/// <summary>
/// What the http and gateway providers share: building the request (URL template, manifest headers
/// with secrets, Runner's identity headers), sending it through the named <see cref="IHttpClientFactory"/>
/// client and classifying the answer into an <see cref="AttemptOutcome"/> (HttpExchange.Responses.cs).
/// </summary>
internal sealed partial class HttpExchange(IHttpClientFactory clients, SecretReader secrets)
{
    /// <summary>The named <see cref="IHttpClientFactory"/> client requests go through.</summary>
    public const string ClientName = "runner-effects";

    /// <summary>
    /// <c>scheme://host:port</c> of the expanded URL. When the command cannot expand the template
    /// (the attempt then fails as <c>invalid_command</c>), the template itself: one stable key per effect.
    /// </summary>
    public static string Upstream(string urlTemplate, CommandMessage command) =>
        CommandUrl.TryExpand(urlTemplate, command, out var url, out _) && TryHttpUri(url, out var uri)
            ? Authority(uri)
            : urlTemplate;

    /// <summary>The command's payload, or <c>null</c> when it has none.</summary>
    public static void WritePayload(Utf8JsonWriter writer, JsonElement payload)
    {
        if (payload.ValueKind == JsonValueKind.Undefined)
        {
            writer.WriteNullValue();
        }
        else
        {
            payload.WriteTo(writer);
        }
    }

    public static byte[] WriteJson<TState>(TState state, Action<Utf8JsonWriter, TState> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer, state);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public async ValueTask<AttemptOutcome> SendAsync(OutgoingRequest request, CommandMessage command, CancellationToken cancellationToken)
    {
        if (!CommandUrl.TryExpand(request.CommandUrl, command, out var url, out var error))
        {
            return AttemptOutcome.Permanent(EffectErrorCodes.InvalidCommand, error);
        }
        if (!TryHttpUri(url, out var uri))
        {
            return AttemptOutcome.Permanent(EffectErrorCodes.InvalidCommand, $"'{url}' is not an absolute http or https URL");
        }
        using var message = new HttpRequestMessage(request.Method, uri);
        if (request.JsonBody is { } body)
        {
            message.Content = new ByteArrayContent(body);
            message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        foreach (var (name, header) in request.ManifestHeaders)
        {
            string value;
            if (header.Secret is { } secret)
            {
                try
                {
                    value = await secrets.ReadAsync(secret, cancellationToken);
                }
                catch (SecretUnavailableException ex)
                {
                    return AttemptOutcome.Permanent(EffectErrorCodes.SecretUnavailable, $"header '{name}': {ex.Message}");
                }
            }
            else
            {
                value = header.Value ?? string.Empty;
            }
            if (!TrySetHeader(message, name, value))
            {
                return AttemptOutcome.Permanent(EffectErrorCodes.ProviderError, $"header '{name}' cannot be sent: not a valid name, or its value is not printable ASCII");
            }
        }
        foreach (var (name, value) in request.RunnerHeaders)
        {
            // Ids come from events and may hold any Unicode; HTTP headers carry ASCII, so such a value
            // is percent-encoded, as on Runner's NATS inbox headers.
            message.Headers.Remove(name);
            message.Headers.TryAddWithoutValidation(name, IsHeaderSafe(value) ? value : Uri.EscapeDataString(value));
        }
        return await ExchangeAsync(message, cancellationToken);
    }

    private static bool TrySetHeader(HttpRequestMessage message, string name, string value)
    {
        if (!IsHeaderSafe(value))
        {
            return false;
        }
        if (message.Headers.TryAddWithoutValidation(name, value))
        {
            return true;
        }
        // Content-Type and friends belong to the content (replacing ours); without a body there is
        // nowhere to put them. Remove throws for a name that is not a valid content header.
        if (message.Content is not { } content)
        {
            return false;
        }
        try
        {
            content.Headers.Remove(name);
            return content.Headers.TryAddWithoutValidation(name, value);
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException)
        {
            return false;
        }
    }

    private static bool IsHeaderSafe(string value)
    {
        foreach (var c in value)
        {
            if (c is < ' ' or > '~' && c != '\t')
            {
                return false;
            }
        }
        return true;
    }

    private static bool TryHttpUri(string url, out Uri uri) =>
        Uri.TryCreate(url, UriKind.Absolute, out uri!) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    private static string Authority(Uri uri) => $"{uri.Scheme}://{uri.Host}:{uri.Port}";
}
