using System.Text;
using Runner.Core.Events;

namespace Runner.Core.Tests.Events;

public sealed class CloudEventDecoderTests
{
    private const int Limit = 64 * 1024;

    private static readonly DateTimeOffset s_storedAt = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);

    private static readonly Dictionary<string, string> s_noHeaders = [];

    private static MessageOrigin Origin(string subject = "aggregate.acme.order.42.created", string stream = "AGGREGATE_EVENTS", ulong sequence = 17) =>
        new(stream, sequence, subject, s_storedAt);

    private static SagaEvent Decode(string json, MessageOrigin? origin = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        var ok = CloudEventDecoder.TryDecode(Encoding.UTF8.GetBytes(json), headers ?? s_noHeaders, origin ?? Origin(), Limit, out var decoded, out var error);
        Assert.True(ok, error?.ToString());
        Assert.Null(error);
        return decoded!;
    }

    private static DecodeError Reject(byte[] payload, MessageOrigin? origin = null, IReadOnlyDictionary<string, string>? headers = null, int limit = Limit)
    {
        var ok = CloudEventDecoder.TryDecode(payload, headers ?? s_noHeaders, origin ?? Origin(), limit, out var decoded, out var error);
        Assert.False(ok);
        Assert.Null(decoded);
        return error!;
    }

    private static DecodeError Reject(string json, MessageOrigin? origin = null, IReadOnlyDictionary<string, string>? headers = null) =>
        Reject(Encoding.UTF8.GetBytes(json), origin, headers);

    [Fact]
    public void Structured_event_is_decoded_with_every_attribute()
    {
        var evt = Decode("""
            {"specversion":"1.0","id":"evt-1","type":"order.created","source":"/orders","subject":"order/42",
             "time":"2024-01-02T03:04:05.123Z","datacontenttype":"application/json","data":{"a":{"b":[7,8]}}}
            """);

        Assert.Equal("evt-1", evt.Id);
        Assert.Equal("order.created", evt.Type);
        Assert.Equal("/orders", evt.Source);
        Assert.Equal("order/42", evt.CeSubject);
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, 123, TimeSpan.Zero), evt.Time);
        Assert.Equal(1704164645123L, evt.TimeMs);
        Assert.Equal("application/json", evt.DataContentType);
        Assert.Equal("""{"a":{"b":[7,8]}}""", evt.DataJson);
        Assert.Equal("acme", evt.Tenant);
        Assert.Equal(Origin(), evt.Origin);
    }

    [Fact]
    public void A_structured_events_data_is_the_payloads_own_bytes_not_a_copy()
    {
        var payload = Encoding.UTF8.GetBytes("""{"specversion":"1.0","id":"e-1","type":"t","source":"s","data":{"order":"o-1","total":12.5}}""");

        Assert.True(CloudEventDecoder.TryDecode(payload, s_noHeaders, Origin(), Limit, out var evt, out var error), error?.ToString());

        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(evt!.Data, out var segment));
        Assert.Same(payload, segment.Array);
        Assert.Equal("""{"order":"o-1","total":12.5}""", evt.DataJson);
    }

    [Fact]
    public void Time_with_an_offset_is_normalized_to_utc()
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","time":"2024-01-02T05:04:05+02:00"}""");

        Assert.Equal(TimeSpan.Zero, evt.Time.Offset);
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero), evt.Time);
    }

    [Fact]
    public void Missing_time_defaults_to_the_time_the_stream_stored_the_message()
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""");

        Assert.Equal(s_storedAt, evt.Time);
    }

    [Fact]
    public void Structured_event_without_data_has_null_data()
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""");

        Assert.Equal("null", evt.DataJson);
        Assert.Null(evt.CeSubject);
    }

    [Fact]
    public void Binary_mode_JSON_data_is_the_bodys_own_bytes_trimmed_and_other_data_a_JSON_string()
    {
        var headers = new Dictionary<string, string> { ["ce-specversion"] = "1.0", ["ce-id"] = "b", ["ce-type"] = "t", ["ce-source"] = "s" };
        var body = Encoding.UTF8.GetBytes(" \n{\"rows\": [1, 2]}\t ");

        Assert.True(CloudEventDecoder.TryDecode(body, headers, Origin(), Limit, out var json, out var error), error?.ToString());
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(json!.Data, out var segment));
        Assert.Same(body, segment.Array);
        Assert.Equal("{\"rows\": [1, 2]}", json.DataJson);

        var text = new Dictionary<string, string>(headers) { ["content-type"] = "text/plain" };
        Assert.True(CloudEventDecoder.TryDecode(Encoding.UTF8.GetBytes("plain \"words\""), text, Origin(), Limit, out var plain, out error), error?.ToString());
        Assert.Equal("\"plain \\u0022words\\u0022\"", plain!.DataJson);

        Assert.Equal(DecodeError.NotJson, Reject(Encoding.UTF8.GetBytes("{\"rows\": 1} {\"rows\": 2}"), headers: headers).Code);
        Assert.Equal(DecodeError.NotJson, Reject(Encoding.UTF8.GetBytes("   "), headers: headers).Code);
    }

    [Fact]
    public void Binary_mode_reads_attributes_from_ce_headers_and_data_from_the_body()
    {
        var headers = new Dictionary<string, string>
        {
            ["ce-specversion"] = "1.0",
            ["ce-id"] = "bin-1",
            ["ce-type"] = "run.requested",
            ["ce-source"] = "/pipelines",
            ["ce-subject"] = "run/9",
            ["ce-time"] = "2024-03-04T05:06:07Z",
            ["content-type"] = "application/json",
            ["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        };

        var evt = Decode("""{"rows": 3}""", Origin("pipeline.globex.etl.started"), headers);

        Assert.Equal("bin-1", evt.Id);
        Assert.Equal("run.requested", evt.Type);
        Assert.Equal("/pipelines", evt.Source);
        Assert.Equal("run/9", evt.CeSubject);
        Assert.Equal(new DateTimeOffset(2024, 3, 4, 5, 6, 7, TimeSpan.Zero), evt.Time);
        Assert.Equal("application/json", evt.DataContentType);
        Assert.Equal("""{"rows": 3}""", evt.DataJson);
        Assert.Equal("globex", evt.Tenant);
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", evt.Headers["traceparent"]);
    }

    [Fact]
    public void Binary_mode_header_names_are_case_insensitive()
    {
        var headers = new Dictionary<string, string>
        {
            ["CE-SpecVersion"] = "1.0",
            ["Ce-Id"] = "bin-2",
            ["CE-TYPE"] = "t",
            ["ce-Source"] = "s",
        };

        var evt = Decode("{}", headers: headers);

        Assert.Equal("bin-2", evt.Id);
        Assert.Equal("t", evt.Type);
        Assert.Equal("s", evt.Source);
    }

    [Fact]
    public void Binary_mode_non_json_body_becomes_a_json_string()
    {
        var headers = new Dictionary<string, string>
        {
            ["ce-specversion"] = "1.0",
            ["ce-id"] = "bin-3",
            ["ce-type"] = "t",
            ["ce-source"] = "s",
            ["content-type"] = "text/plain",
        };

        var evt = Decode("hello \"world\"", headers: headers);

        using var data = System.Text.Json.JsonDocument.Parse(evt.DataJson);
        Assert.Equal(System.Text.Json.JsonValueKind.String, data.RootElement.ValueKind);
        Assert.Equal("hello \"world\"", data.RootElement.GetString());
    }

    [Fact]
    public void Binary_mode_json_body_that_does_not_parse_is_rejected()
    {
        var headers = new Dictionary<string, string>
        {
            ["ce-specversion"] = "1.0",
            ["ce-type"] = "t",
            ["ce-source"] = "s",
        };

        var error = Reject("{not json", headers: headers);

        Assert.Equal(DecodeError.NotJson, error.Code);
    }

    [Fact]
    public void Internal_headers_are_not_shown_to_scripts()
    {
        var headers = new Dictionary<string, string>
        {
            ["Nats-Msg-Id"] = "m1",
            ["runner-saga"] = "orders",
            ["correlation-id"] = "corr-1",
        };

        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""", headers: headers);

        Assert.False(evt.Headers.ContainsKey("Nats-Msg-Id"));
        Assert.False(evt.Headers.ContainsKey("runner-saga"));
        Assert.Equal("corr-1", evt.Headers["correlation-id"]);
    }

    [Fact]
    public void Headers_are_seen_case_insensitively_and_counted_and_listed_without_the_internal_ones()
    {
        foreach (var comparer in new[] { StringComparer.OrdinalIgnoreCase, StringComparer.Ordinal })
        {
            var headers = new Dictionary<string, string>(comparer)
            {
                ["Nats-Msg-Id"] = "m1",
                ["runner-saga"] = "orders",
                ["Correlation-Id"] = "corr-1",
                ["traceparent"] = "00-t",
            };

            var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""", headers: headers);

            Assert.Equal(2, evt.Headers.Count);
            Assert.Equal(["Correlation-Id", "traceparent"], evt.Headers.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(["00-t", "corr-1"], evt.Headers.Select(h => h.Value).Order(StringComparer.Ordinal));
            Assert.Equal("corr-1", evt.Headers["correlation-ID"]);
            Assert.False(evt.Headers.TryGetValue("NATS-MSG-ID", out _));
            Assert.Throws<KeyNotFoundException>(() => evt.Headers["runner-saga"]);
        }
    }

    [Fact]
    public void A_case_insensitive_header_table_is_shown_through_a_view_not_copied()
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["correlation-id"] = "corr-1" };

        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""", headers: headers);
        headers["x-later"] = "seen";

        Assert.Equal("seen", evt.Headers["X-Later"]);
        Assert.Equal(2, evt.Headers.Count);
    }

    [Fact]
    public void Data_keeps_its_exact_text_and_data_base64_marks_its_content_type()
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","data": { "n" : 1.50, "s": "caf\u00e9 \"q\"" } }""");
        var binary = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","data_base64":"aGk="}""");
        var text = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","data":"plain"}""");

        Assert.Equal("""{ "n" : 1.50, "s": "caf\u00e9 \"q\"" }""", evt.DataJson);
        Assert.Equal("\"aGk=\"", binary.DataJson);
        Assert.Equal("application/octet-stream;base64", binary.DataContentType);
        Assert.Equal("\"plain\"", text.DataJson);
    }

    [Fact]
    public void Escaped_attribute_names_are_read_as_their_text()
    {
        var evt = Decode("""{"spec\u0076ersion":"1.0","i\u0064":"e-9","type":"t","source":"s"}""");

        Assert.Equal("e-9", evt.Id);
    }

    [Theory]
    [InlineData("""{"specversion":"1.0","id":7,"type":"t","source":"s","data":[1,""")]
    [InlineData("""{"specversion":"1.0","id":"e","type":"t","source":"s"} {}""")]
    [InlineData("""{"specversion":"1.0","id":"e","type":"t","source":"s"} x""")]
    [InlineData("""[1,2""")]
    [InlineData("")]
    public void A_payload_that_is_not_one_whole_json_value_is_not_json_whatever_else_is_wrong(string payload)
    {
        var error = Reject(payload);

        Assert.Equal(DecodeError.NotJson, error.Code);
    }

    [Theory]
    [InlineData("aggregate.acme.order.42.created", "acme")]
    [InlineData("pipeline.globex.etl.completed", "globex")]
    [InlineData("workflow.evt.initech.http.succeeded", "initech")]
    [InlineData("workflow.evt.initech.timer.orders", "initech")]
    public void Tenant_comes_from_the_subject(string subject, string tenant)
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""", Origin(subject));

        Assert.Equal(tenant, evt.Tenant);
    }

    [Fact]
    public void Tenant_attribute_that_agrees_with_the_subject_is_accepted()
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","tenant":"acme"}""");

        Assert.Equal("acme", evt.Tenant);
    }

    [Fact]
    public void Tenant_attribute_is_used_when_the_subject_names_no_tenant()
    {
        var evt = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","tenant":"hooli"}""", Origin("custom.things.happened"));

        Assert.Equal("hooli", evt.Tenant);
    }

    [Fact]
    public void Tenant_attribute_that_differs_from_the_subject_is_rejected()
    {
        var error = Reject("""{"specversion":"1.0","id":"e","type":"t","source":"s","tenant":"evil"}""");

        Assert.Equal(DecodeError.TenantMismatch, error.Code);
        Assert.Contains("evil", error.Message, StringComparison.Ordinal);
        Assert.Contains("acme", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Binary_mode_tenant_header_that_differs_from_the_subject_is_rejected()
    {
        var headers = new Dictionary<string, string>
        {
            ["ce-specversion"] = "1.0",
            ["ce-type"] = "t",
            ["ce-source"] = "s",
            ["ce-tenant"] = "evil",
        };

        var error = Reject("{}", headers: headers);

        Assert.Equal(DecodeError.TenantMismatch, error.Code);
    }

    [Theory]
    [InlineData("a.b")]
    [InlineData("two words")]
    [InlineData("star*")]
    [InlineData(">")]
    public void Tenant_attribute_that_is_not_one_subject_token_is_rejected(string tenant)
    {
        var error = Reject($$"""{"specversion":"1.0","id":"e","type":"t","source":"s","tenant":"{{tenant}}"}""", Origin("custom.things.happened"));

        Assert.Equal(DecodeError.InvalidAttribute, error.Code);
        Assert.Contains("one subject token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Event_with_no_tenant_anywhere_is_rejected()
    {
        var error = Reject("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""", Origin("custom.things.happened"));

        Assert.Equal(DecodeError.NoTenant, error.Code);
    }

    [Fact]
    public void Missing_id_defaults_to_stream_and_sequence()
    {
        var evt = Decode("""{"specversion":"1.0","type":"t","source":"s"}""", Origin(stream: "PIPELINE_EVENTS", sequence: 90210, subject: "pipeline.acme.etl.done"));

        Assert.Equal("PIPELINE_EVENTS:90210", evt.Id);
    }

    [Fact]
    public void Empty_id_defaults_to_stream_and_sequence()
    {
        var evt = Decode("""{"specversion":"1.0","id":"","type":"t","source":"s"}""");

        Assert.Equal("AGGREGATE_EVENTS:17", evt.Id);
    }

    [Fact]
    public void Unknown_fields_are_ignored()
    {
        var evt = Decode("""
            {"specversion":"1.0","id":"e","type":"t","source":"s","traceparent":"x","partitionkey":42,
             "extension":{"nested":[1,2]},"flag":true,"nothing":null,"data":1}
            """);

        Assert.Equal("e", evt.Id);
        Assert.Equal("1", evt.DataJson);
    }

    [Fact]
    public void Non_json_payload_is_rejected()
    {
        var error = Reject("this is not json");

        Assert.Equal(DecodeError.NotJson, error.Code);
    }

    [Fact]
    public void Json_that_is_not_an_object_is_not_a_cloudevent()
    {
        var error = Reject("[1,2,3]");

        Assert.Equal(DecodeError.NotCloudEvent, error.Code);
    }

    [Fact]
    public void Json_without_specversion_is_not_a_cloudevent()
    {
        var error = Reject("""{"id":"e","type":"t","source":"s"}""");

        Assert.Equal(DecodeError.NotCloudEvent, error.Code);
        Assert.Contains("specversion", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_specversion_is_rejected()
    {
        var error = Reject("""{"specversion":"0.3","id":"e","type":"t","source":"s"}""");

        Assert.Equal(DecodeError.UnsupportedSpecVersion, error.Code);
    }

    [Fact]
    public void Json_without_type_is_rejected()
    {
        var error = Reject("""{"specversion":"1.0","id":"e","source":"s"}""");

        Assert.Equal(DecodeError.MissingAttribute, error.Code);
        Assert.Contains("'type'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_without_source_is_rejected()
    {
        var error = Reject("""{"specversion":"1.0","id":"e","type":"t"}""");

        Assert.Equal(DecodeError.MissingAttribute, error.Code);
        Assert.Contains("'source'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Known_attribute_that_is_not_a_string_is_rejected()
    {
        var error = Reject("""{"specversion":"1.0","id":7,"type":"t","source":"s"}""");

        Assert.Equal(DecodeError.InvalidAttribute, error.Code);
        Assert.Contains("'id'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Id_longer_than_a_key_component_is_rejected()
    {
        var error = Reject($$"""{"specversion":"1.0","id":"{{new string('x', 257)}}","type":"t","source":"s"}""");

        Assert.Equal(DecodeError.InvalidAttribute, error.Code);
    }

    [Fact]
    public void Invalid_utf8_is_rejected_with_the_byte_offset()
    {
        var payload = Encoding.UTF8.GetBytes("""{"specversion":"1.0","id":"e","type":"t","source":"s","data":"xx"}""");
        payload[^4] = 0xC3;
        payload[^3] = 0x28;

        var error = Reject(payload);

        Assert.Equal(DecodeError.InvalidUtf8, error.Code);
        Assert.Contains("byte", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Payload_over_the_limit_is_rejected_before_parsing()
    {
        var payload = Encoding.UTF8.GetBytes("""{"specversion":"1.0","id":"e","type":"t","source":"s","data":"0123456789"}""");

        var error = Reject(payload, limit: payload.Length - 1);

        Assert.Equal(DecodeError.PayloadTooLarge, error.Code);
        Assert.Contains(payload.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Payload_exactly_at_the_limit_is_accepted()
    {
        var payload = Encoding.UTF8.GetBytes("""{"specversion":"1.0","id":"e","type":"t","source":"s"}""");

        var ok = CloudEventDecoder.TryDecode(payload, s_noHeaders, Origin(), payload.Length, out var decoded, out var error);

        Assert.True(ok, error?.ToString());
        Assert.NotNull(decoded);
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("2024-13-45T99:00:00Z")]
    [InlineData("01/02/2024")]
    [InlineData("2024-01-02 10:00:00")]
    [InlineData("2024-01-02T10:00:00")]
    [InlineData("2024-02-30T10:00:00.000Z")]
    [InlineData("2024-01-02T10:00:00.00xZ")]
    public void Bad_time_is_rejected(string time)
    {
        var error = Reject($$"""{"specversion":"1.0","id":"e","type":"t","source":"s","time":"{{time}}"}""");

        Assert.Equal(DecodeError.InvalidAttribute, error.Code);
        Assert.Contains("time", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"2024-01-02T03:04:05.123Z\"", "2024-01-02T03:04:05.123Z")]
    [InlineData("\"\\u0032024-01-02T03:04:05.123Z\"", "2024-01-02T03:04:05.123Z")]
    [InlineData("\"2024-01-02T03:04:05.1Z\"", "2024-01-02T03:04:05.100Z")]
    [InlineData("\"2024-01-02t03:04:05.123z\"", "2024-01-02T03:04:05.123Z")]
    public void A_time_reads_the_same_in_runners_own_shape_escaped_or_in_another(string json, string expected)
    {
        var evt = Decode($$"""{"specversion":"1.0","id":"e","type":"t","source":"s","time":{{json}}}""");

        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), evt.Time);
    }

    [Fact]
    public void Of_two_times_the_last_one_counts_whichever_shape_each_is_in()
    {
        var canonicalLast = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","time":"2020-01-01T00:00:00Z","time":"2024-01-02T03:04:05.123Z"}""");
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, 123, TimeSpan.Zero), canonicalLast.Time);

        var otherLast = Decode("""{"specversion":"1.0","id":"e","type":"t","source":"s","time":"2024-01-02T03:04:05.123Z","time":"2020-01-01T00:00:00Z"}""");
        Assert.Equal(new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero), otherLast.Time);

        var error = Reject("""{"specversion":"1.0","id":"e","type":"t","source":"s","time":"2024-01-02T03:04:05.123Z","time":"yesterday"}""");
        Assert.Equal(DecodeError.InvalidAttribute, error.Code);
        Assert.Contains("yesterday", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nothing_of_one_event_carries_over_to_the_next_read_on_the_same_thread()
    {
        Decode("""{"specversion":"1.0","id":"e1","type":"t","source":"s","subject":"x","tenant":"acme","time":"2024-01-02T03:04:05.123Z","datacontenttype":"text/plain","data":"d"}""");
        Reject("""{"specversion":"1.0","id":"e2","type":"t","source":"s","time":"\ud800"}""");

        var next = Decode("""{"specversion":"1.0","type":"t2","source":"s2"}""", Origin(subject: "aggregate.initech.order.9.created"));

        Assert.Equal(("AGGREGATE_EVENTS:17", "t2", "s2"), (next.Id, next.Type, next.Source));
        Assert.Null(next.CeSubject);
        Assert.Null(next.DataContentType);
        Assert.Equal("initech", next.Tenant);
        Assert.Equal(s_storedAt, next.Time);
        Assert.Equal("null", Encoding.UTF8.GetString(next.Data.Span));
        var untenanted = Reject("""{"specversion":"1.0","type":"t","source":"s"}""", Origin(subject: "custom.thing"));
        Assert.Equal(DecodeError.NoTenant, untenanted.Code);
    }
}
