using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Runner.Core.Json;
using Runner.Core.Keys;
using Runner.Core.Subjects;

namespace Runner.Core.Events;

/// <summary>
/// Decodes CloudEvents 1.0 from a NATS message: binary mode when a <c>ce-specversion</c> header is
/// present (attributes in <c>ce-*</c> headers, the body is the data), structured JSON otherwise.
/// Unknown attributes are ignored. Never throws on bad input: returns a <see cref="DecodeError"/>.
/// </summary>
internal static partial class CloudEventDecoder
{
    /// <summary>An event without data: JSON <c>null</c>.</summary>
    private static readonly byte[] s_nullData = "null"u8.ToArray();

    public static bool TryDecode(
        ReadOnlyMemory<byte> payload,
        IReadOnlyDictionary<string, string> headers,
        MessageOrigin origin,
        int maxPayloadBytes,
        out SagaEvent? decoded,
        out DecodeError? error)
    {
        decoded = null;
        if (payload.Length > maxPayloadBytes)
        {
            error = new DecodeError(DecodeError.PayloadTooLarge, $"payload is {payload.Length} bytes, the limit is {maxPayloadBytes}");
            return false;
        }

        if (!Utf8.IsValid(payload.Span))
        {
            error = new DecodeError(DecodeError.InvalidUtf8, $"payload is not valid UTF-8 at byte {InvalidUtf8At(payload.Span)}");
            return false;
        }

        // One set of attributes per thread, emptied after each event (decoding never runs two events on one thread at once).
        var attributes = t_attributes ??= new CloudEventAttributes();
        try
        {
            if (TryGetHeader(headers, "ce-specversion", out _))
            {
                attributes.ReadBinary(headers);
                if (!attributes.ReadBinaryData(payload, out error))
                {
                    return false;
                }
            }
            else if (!attributes.ReadStructured(payload, out error))
            {
                return false;
            }

            return attributes.TryBuild(headers, origin, out decoded, out error);
        }
        catch (InvalidOperationException ex)
        {
            // System.Text.Json refuses to turn an escaped lone surrogate ("\ud800") into a string.
            error = new DecodeError(DecodeError.InvalidAttribute, $"event contains a string that is not valid Unicode: {ex.Message}");
            return false;
        }
        finally
        {
            attributes.Clear();
        }
    }

    [ThreadStatic]
    private static CloudEventAttributes? t_attributes;

    /// <summary>Where the first byte that is not UTF-8 is (only asked once the payload is known to hold one).</summary>
    private static int InvalidUtf8At(ReadOnlySpan<byte> payload)
    {
        try
        {
            Json.StrictUtf8.Encoding.GetCharCount(payload);
            return -1;
        }
        catch (DecoderFallbackException ex)
        {
            return ex.Index;
        }
    }

    /// <summary>
    /// An RFC 3339 timestamp. The shape Runner itself writes (<see cref="CanonicalTime"/>, what every
    /// event on the inbox carries) is read digit by digit; anything else, or a value out of range in
    /// that shape, goes through the pattern and the framework's parser, which decide as before.
    /// </summary>
    internal static bool TryParseTime(string text, out DateTimeOffset time) =>
        CanonicalTime.TryParse(text, out time)
        || (Rfc3339().IsMatch(text) && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time));

    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")]
    private static partial System.Text.RegularExpressions.Regex Rfc3339();

    internal static bool TryGetHeader(IReadOnlyDictionary<string, string> headers, string name, out string value)
    {
        if (headers.TryGetValue(name, out value!))
        {
            return true;
        }
        if (HeaderView.IgnoresCase(headers))
        {
            // The table found none in any case: no need to look again.
            value = string.Empty;
            return false;
        }
        foreach (var (k, v) in headers)
        {
            if (string.Equals(k, name, StringComparison.OrdinalIgnoreCase))
            {
                value = v;
                return true;
            }
        }
        value = string.Empty;
        return false;
    }

    private sealed class CloudEventAttributes
    {
        public string? SpecVersion { get; set; }
        public string? Id { get; set; }
        public string? Type { get; set; }
        public string? Source { get; set; }
        public string? Subject { get; set; }
        public string? Time { get; set; }

        /// <summary>The time, when it came in Runner's own shape and was read from its bytes (then <see cref="Time"/> is null).</summary>
        public DateTimeOffset? ParsedTime { get; set; }
        public string? Tenant { get; set; }
        public string? DataContentType { get; set; }
        /// <summary>The event's data as UTF-8 JSON: for a structured event, a slice of the payload (no copy).</summary>
        public ReadOnlyMemory<byte> Data { get; set; } = s_nullData;

        /// <summary>Back to no attributes at all, holding nothing of the event just read.</summary>
        public void Clear()
        {
            SpecVersion = Id = Type = Source = Subject = Time = Tenant = DataContentType = null;
            ParsedTime = null;
            Data = s_nullData;
        }

        public void ReadBinary(IReadOnlyDictionary<string, string> headers)
        {
            foreach (var (name, value) in headers)
            {
                if (!name.StartsWith(EventHeaders.CloudEventPrefix, StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }
                Assign(name[EventHeaders.CloudEventPrefix.Length..].ToLowerInvariant(), value);
            }
            if (TryGetHeader(headers, EventHeaders.ContentType, out var contentType))
            {
                DataContentType = contentType;
            }
        }

        /// <summary>
        /// The body of a binary-mode event as its data: JSON (no content type, or one naming JSON) as
        /// the body's own bytes, validated and trimmed, with no copy; anything else as a JSON string.
        /// </summary>
        public bool ReadBinaryData(ReadOnlyMemory<byte> body, out DecodeError? error)
        {
            error = null;
            if (body.Length == 0)
            {
                Data = s_nullData;
                return true;
            }
            var isJson = DataContentType is null || DataContentType.Contains("json", StringComparison.OrdinalIgnoreCase);
            if (!isJson)
            {
                Data = JsonSerializer.SerializeToUtf8Bytes(Json.StrictUtf8.Encoding.GetString(body.Span), CoreJsonContext.Default.String);
                return true;
            }
            try
            {
                var reader = new Utf8JsonReader(body.Span, new JsonReaderOptions { MaxDepth = 64 });
                if (!reader.Read())
                {
                    throw new JsonException("no JSON value");
                }
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                var end = (int)reader.BytesConsumed;
                if (reader.Read())
                {
                    throw new JsonException("more than one JSON value");
                }
                Data = body[start..end];
                return true;
            }
            catch (JsonException ex)
            {
                error = new DecodeError(DecodeError.NotJson, $"binary-mode data is not JSON: {ex.Message}");
                return false;
            }
        }

        /// <summary>
        /// Reads a structured-mode event straight from its UTF-8 bytes: the attributes as strings, the
        /// data as its raw JSON text. The whole payload is read to its end even after an attribute is
        /// found wrong, so that a payload that is not JSON at all is reported as such.
        /// </summary>
        public bool ReadStructured(ReadOnlyMemory<byte> body, out DecodeError? error)
        {
            error = null;
            var reader = new Utf8JsonReader(body.Span, new JsonReaderOptions { MaxDepth = 64 });
            try
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    error = new DecodeError(DecodeError.NotCloudEvent, "payload is JSON but not an object");
                }
                else
                {
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var wrong = ReadAttribute(ref reader, body);
                        error ??= wrong;
                    }
                }
                if (reader.Read())
                {
                    // Unreachable: a second value after the first throws; kept so that it could not be ignored.
                    throw new JsonException("more than one JSON value");
                }
            }
            catch (JsonException ex)
            {
                error = new DecodeError(DecodeError.NotJson, $"payload is not JSON: {ex.Message}");
                return false;
            }
            if (error is not null)
            {
                return false;
            }
            if (SpecVersion is null)
            {
                error = new DecodeError(DecodeError.NotCloudEvent, "JSON object has no 'specversion': not a CloudEvent");
                return false;
            }
            return true;
        }

        /// <summary>Reads one property of the event object (the reader on its name), leaving the reader on the value's last token.</summary>
        private DecodeError? ReadAttribute(ref Utf8JsonReader reader, ReadOnlyMemory<byte> body)
        {
            var isData = reader.ValueTextEquals("data"u8);
            var isBase64 = !isData && reader.ValueTextEquals("data_base64"u8);
            var name = isData || isBase64 ? null : KnownName(ref reader);
            reader.Read();
            if (isData || isBase64)
            {
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                Data = body[start..(int)reader.BytesConsumed];
                if (isBase64)
                {
                    DataContentType ??= "application/octet-stream;base64";
                }
                return null;
            }
            if (reader.TokenType == JsonTokenType.String)
            {
                if (name is "time" && !reader.ValueIsEscaped && !reader.HasValueSequence && CanonicalTime.TryParse(reader.ValueSpan, out var parsed))
                {
                    // The shape Runner writes (every event on the inbox) is read from its bytes: no text of it is made.
                    Time = null;
                    ParsedTime = parsed;
                }
                else if (name is not null)
                {
                    // The values that repeat across events are shared; an id or a time is its own.
                    Assign(name, name is "id" or "time" or "subject" ? reader.GetString()! : Utf8Strings.Get(ref reader));
                }
                return null;
            }
            reader.Skip();
            return name is not null && reader.TokenType != JsonTokenType.Null
                ? new DecodeError(DecodeError.InvalidAttribute, $"attribute '{name}' must be a string")
                : null;
        }

        /// <summary>The attribute the reader's property names, as its constant; null for any other property.</summary>
        private static string? KnownName(ref Utf8JsonReader reader) =>
            reader.ValueTextEquals("specversion"u8) ? "specversion"
            : reader.ValueTextEquals("id"u8) ? "id"
            : reader.ValueTextEquals("type"u8) ? "type"
            : reader.ValueTextEquals("source"u8) ? "source"
            : reader.ValueTextEquals("subject"u8) ? "subject"
            : reader.ValueTextEquals("time"u8) ? "time"
            : reader.ValueTextEquals("tenant"u8) ? "tenant"
            : reader.ValueTextEquals("datacontenttype"u8) ? "datacontenttype"
            : null;

        public bool TryBuild(IReadOnlyDictionary<string, string> headers, MessageOrigin origin, out SagaEvent? decoded, out DecodeError? error)
        {
            decoded = null;
            if (SpecVersion != "1.0")
            {
                error = new DecodeError(DecodeError.UnsupportedSpecVersion, $"specversion '{SpecVersion}' is not supported (expected 1.0)");
                return false;
            }
            if (string.IsNullOrWhiteSpace(Type))
            {
                error = new DecodeError(DecodeError.MissingAttribute, "required attribute 'type' is missing");
                return false;
            }
            if (string.IsNullOrWhiteSpace(Source))
            {
                error = new DecodeError(DecodeError.MissingAttribute, "required attribute 'source' is missing");
                return false;
            }
            var id = string.IsNullOrEmpty(Id) ? $"{origin.Stream}:{origin.Sequence}" : Id;
            if (!StoreKeys.IsValidComponent(id))
            {
                error = new DecodeError(DecodeError.InvalidAttribute, "attribute 'id' is longer than 256 characters or contains control separators");
                return false;
            }

            var time = ParsedTime ?? origin.Timestamp;
            if (ParsedTime is null && !string.IsNullOrEmpty(Time) && !TryParseTime(Time, out time))
            {
                error = new DecodeError(DecodeError.InvalidAttribute, $"attribute 'time' is not an RFC 3339 timestamp: '{Time}'");
                return false;
            }

            var subjectTenant = SubjectTenant.FromSubject(origin.Subject);
            var tenant = Tenant ?? subjectTenant;
            if (tenant is null)
            {
                error = new DecodeError(DecodeError.NoTenant, $"no 'tenant' attribute and subject '{origin.Subject}' names none");
                return false;
            }
            if (subjectTenant is not null && Tenant is not null && !string.Equals(subjectTenant, Tenant, StringComparison.Ordinal))
            {
                error = new DecodeError(DecodeError.TenantMismatch, $"attribute tenant '{Tenant}' differs from subject tenant '{subjectTenant}'");
                return false;
            }
            if (!StoreKeys.IsValidComponent(tenant) || tenant.Contains('.', StringComparison.Ordinal) || Subjects.SubjectPattern.Validate(tenant, allowWildcards: false) is not null)
            {
                // The tenant becomes one token of the subject of every command, result and timer.
                error = new DecodeError(DecodeError.InvalidAttribute, "tenant must be one subject token of at most 256 characters: no '.', spaces, control characters, '*' or '>'");
                return false;
            }

            error = null;
            decoded = new SagaEvent(id, Type!, Source!, Subject, time.ToUniversalTime(), tenant, DataContentType, Data, VisibleHeaders.Of(headers), origin);
            return true;
        }

        private void Assign(string name, string value)
        {
            switch (name)
            {
                case "specversion": SpecVersion = value; break;
                case "id": Id = value; break;
                case "type": Type = value; break;
                case "source": Source = value; break;
                case "subject": Subject = value; break;
                case "time": Time = value; ParsedTime = null; break;
                case "tenant": Tenant = value; break;
                case "datacontenttype": DataContentType = value; break;
                default: break;
            }
        }
    }
}
