using Runner.Core.Manifests;

namespace Runner.Core.Tests.Manifests;

public sealed class ManifestParserTests
{
    private const string File = "manifests/orders.yaml";

    private const string ValidSaga = """
        kind: saga
        name: order-flow
        description: follows an order
        script: order-flow.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.order.*.>"
            correlation: "subject[3]"
          - stream: WORKFLOW_EVENTS
            subject: workflow.evt.*.timer.order-flow
            correlation: $.data.key
        limits:
          timeout_ms: 250
          max_statements: 5000
          memory_mb: 8
        """;

    private static ManifestError Single(ManifestParser.Result result) => Assert.Single(result.Errors);

    [Fact]
    public void Valid_saga_is_parsed()
    {
        var result = ManifestParser.Parse(ValidSaga, File);

        Assert.Empty(result.Errors);
        var saga = Assert.Single(result.Sagas);
        Assert.Equal("order-flow", saga.Name);
        Assert.Equal("order-flow.js", saga.Script);
        Assert.Equal(File, saga.File);
        Assert.Equal(1, saga.Line);
        Assert.Equal(2, saga.Triggers.Count);
        Assert.Equal("AGGREGATE_EVENTS", saga.Triggers[0].Stream);
        Assert.Equal("aggregate.*.order.*.>", saga.Triggers[0].Subject.Text);
        Assert.Equal("subject[3]", saga.Triggers[0].Correlation.Text);
        Assert.Equal(6, saga.Triggers[0].Line);
        Assert.Equal(9, saga.Triggers[1].Line);
        Assert.Equal(250, saga.Limits.TimeoutMs);
        Assert.Equal(5000, saga.Limits.MaxStatements);
        Assert.Equal(8, saga.Limits.MemoryMb);
        Assert.Equal(ScriptLimits.Default.Recursion, saga.Limits.Recursion);
        Assert.Equal(ScriptLimits.Default.MaxOutputBytes, saga.Limits.MaxOutputBytes);
    }

    [Fact]
    public void A_saga_declares_a_version_and_a_migration_and_a_migration_needs_a_version()
    {
        var declared = ManifestParser.Parse(ValidSaga + "\nversion: \"2024-07\"\nmigrate: true\n", File);
        Assert.Empty(declared.Errors);
        Assert.Equal(("2024-07", true), (declared.Sagas[0].Version, declared.Sagas[0].Migrate));
        Assert.Equal((null, false), (ManifestParser.Parse(ValidSaga, File).Sagas[0].Version, ManifestParser.Parse(ValidSaga, File).Sagas[0].Migrate));

        Assert.Contains("'migrate: true' needs a 'version'", Single(ManifestParser.Parse(ValidSaga + "\nmigrate: true\n", File)).Message, StringComparison.Ordinal);
        Assert.Contains("'migrate' must be true or false", Single(ManifestParser.Parse(ValidSaga + "\nversion: 2\nmigrate: perhaps\n", File)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Saga_without_limits_gets_the_defaults()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers: [{ stream: S, subject: a.b, correlation: "header:x" }]
            """, File);

        Assert.Empty(result.Errors);
        Assert.Equal(ScriptLimits.Default, Assert.Single(result.Sagas).Limits);
    }

    [Fact]
    public void Valid_effect_is_parsed()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: http.call
            provider: http
            pool: gpu
            http: { url: "http://payments.internal/charges" }
            retry: { max_attempts: 5 }
            """, File);

        Assert.Empty(result.Errors);
        var effect = Assert.Single(result.Effects);
        Assert.Equal("http.call", effect.Name);
        Assert.Equal("http", effect.Provider);
        Assert.Equal("gpu", effect.Pool);
        Assert.Equal("http://payments.internal/charges", effect.Http!.Url);
        Assert.Equal(5, effect.Retry.MaxAttempts);
        Assert.Equal(File, effect.File);
        Assert.Equal(1, effect.Line);
    }

    [Fact]
    public void Unknown_field_is_reported_at_its_line()
    {
        var error = Single(ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            colour: red
            triggers: [{ stream: S, subject: a.b, correlation: "subject[1]" }]
            """, File));

        Assert.Equal(File, error.File);
        Assert.Equal(4, error.Line);
        Assert.Equal(1, error.Column);
        Assert.Contains("unknown field 'colour'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_trigger_and_limit_fields_are_reported_at_their_lines()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers:
              - stream: S
                subject: a.b
                correlation: "subject[1]"
                filter: x
            limits:
              timeout: 5
            """, File);

        Assert.Collection(result.Errors,
            e => Assert.Equal((8, "trigger: unknown field 'filter'"), (e.Line, e.Message)),
            e => Assert.Equal((10, "limits: unknown field 'timeout'"), (e.Line, e.Message)));
    }

    [Fact]
    public void Bad_subject_is_reported_at_its_line()
    {
        var error = Single(ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers:
              - stream: S
                correlation: "subject[1]"
                subject: aggregate..order
            """, File));

        Assert.Equal(File, error.File);
        Assert.Equal(7, error.Line);
        Assert.Contains("empty token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_correlation_is_reported_at_its_line()
    {
        var error = Single(ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers:
              - stream: S
                subject: a.b

                correlation: body.id
            """, File));

        Assert.Equal(8, error.Line);
        Assert.Contains("correlation 'body.id'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_script_is_reported_at_the_saga()
    {
        var error = Single(ManifestParser.Parse("""
            # the order saga
            kind: saga
            name: s
            triggers: [{ stream: S, subject: a.b, correlation: "subject[1]" }]
            """, File));

        Assert.Equal(2, error.Line);
        Assert.Contains("missing 'script'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_triggers_are_reported()
    {
        var error = Single(ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            """, File));

        Assert.Equal(1, error.Line);
        Assert.Contains("'triggers' must be a non-empty list", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_trigger_list_is_reported_at_its_line()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers: []
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(4, error.Line);
        Assert.Contains("'triggers' must be a non-empty list", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trigger_missing_its_fields_is_reported_for_each()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers:
              - stream: S
              - not-a-mapping
            """, File);

        Assert.Collection(result.Errors,
            e => Assert.Equal((5, "trigger: missing 'subject'"), (e.Line, e.Message)),
            e => Assert.Equal((5, "trigger: missing 'correlation'"), (e.Line, e.Message)),
            e => Assert.Equal(6, e.Line));
    }

    [Fact]
    public void Unknown_kind_is_reported_at_its_line()
    {
        var result = ManifestParser.Parse("""
            name: s

            kind: workflow
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(3, error.Line);
        Assert.Equal(7, error.Column);
        Assert.Contains("unknown kind 'workflow'", error.Message, StringComparison.Ordinal);
        Assert.Empty(result.Sagas);
        Assert.Empty(result.Effects);
    }

    [Fact]
    public void Missing_kind_is_reported()
    {
        var error = Assert.Single(ManifestParser.Parse("name: s\nscript: s.js\n", File).Errors);

        Assert.Contains("missing 'kind'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("timeout_ms: 0", "limits.timeout_ms")]
    [InlineData("timeout_ms: 60001", "limits.timeout_ms")]
    [InlineData("memory_mb: lots", "limits.memory_mb")]
    [InlineData("recursion: 3", "limits.recursion")]
    [InlineData("max_statements: 1.5", "limits.max_statements")]
    [InlineData("max_output_bytes: [1]", "limits.max_output_bytes")]
    public void Bad_limits_are_reported_at_their_line(string limit, string field)
    {
        var result = ManifestParser.Parse($$"""
            kind: saga
            name: s
            script: s.js
            triggers: [{ stream: S, subject: a.b, correlation: "subject[1]" }]
            limits:
              regex_timeout_ms: 20
              {{limit}}
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(7, error.Line);
        Assert.StartsWith(field + " must be an integer in [", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_that_are_not_a_mapping_are_reported()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers: [{ stream: S, subject: a.b, correlation: "subject[1]" }]
            limits: 100
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(5, error.Line);
        Assert.Contains("'limits' must be a mapping", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_name_is_reported_at_its_line()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: Order_Flow
            script: s.js
            triggers: [{ stream: S, subject: a.b, correlation: "subject[1]" }]
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(2, error.Line);
        Assert.Contains("name 'Order_Flow'", error.Message, StringComparison.Ordinal);
        Assert.Empty(result.Sagas);
    }

    [Fact]
    public void Effect_pool_with_a_wildcard_is_reported()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: e
            provider: http
            pool: "gpu.*"
            http: { url: "http://h/x" }
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(4, error.Line);
        Assert.Contains("pool", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Yaml_syntax_error_is_reported_with_its_line()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers: [a, b
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(File, error.File);
        Assert.Equal(5, error.Line);
        Assert.StartsWith("YAML syntax:", error.Message, StringComparison.Ordinal);
        Assert.Empty(result.Sagas);
    }

    [Fact]
    public void Unterminated_quote_is_reported_with_its_line()
    {
        var result = ManifestParser.Parse("kind: saga\nname: \"unclosed\nscript: x\n", File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(2, error.Line);
        Assert.StartsWith("YAML syntax:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unclosed_flow_collection_followed_by_a_key_is_reported_not_thrown()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            script: s.js
            triggers: [{ stream: S, subject: a.b
            limits: { timeout_ms: 5 }
            """, File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(File, error.File);
        Assert.InRange(error.Line, 4, 5);
        Assert.StartsWith("YAML syntax:", error.Message, StringComparison.Ordinal);
        Assert.Empty(result.Sagas);
    }

    [Fact]
    public void Yaml_syntax_error_from_bad_indentation_is_reported_with_its_line()
    {
        var result = ManifestParser.Parse("kind: saga\nname: s\n  script: s.js\n", File);

        var error = Assert.Single(result.Errors);
        Assert.Equal(3, error.Line);
        Assert.StartsWith("YAML syntax:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_error_in_a_document_is_reported_at_once()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: s
            owner: me
            triggers:
              - stream: S
                subject: "a.>.b"
                correlation: "subject[x]"
            limits:
              memory_mb: 0
            """, File);

        Assert.Equal(
            [
                (3, "saga: unknown field 'owner'"),
                (1, "saga: missing 'script'"),
                (6, "trigger: subject 'a.>.b': '>' must be the last token"),
                (7, "trigger: correlation 'subject[x]': subject index must be a non-negative integer"),
                (9, "limits.memory_mb must be an integer in [1, 1024]"),
            ],
            result.Errors.Select(e => (e.Line, e.Message)));
        Assert.All(result.Errors, e => Assert.Equal(File, e.File));
    }

    [Fact]
    public void Every_document_of_a_file_is_parsed_and_errors_carry_file_lines()
    {
        var result = ManifestParser.Parse("""
            kind: saga
            name: first
            script: first.js
            triggers: [{ stream: S, subject: a.b, correlation: "subject[1]" }]
            ---
            kind: effect
            name: http
            provider: http
            http: { url: "http://h/x" }
            ---
            kind: saga
            name: broken
            script: broken.js
            triggers:
              - stream: S
                subject: "a b"
                correlation: "subject[1]"
            ---
            kind: saga
            name: third
            script: third.js
            triggers: [{ stream: S, subject: c.d, correlation: "$.data.id" }]
            ---
            """, File);

        Assert.Equal(["first", "broken", "third"], result.Sagas.Select(s => s.Name));
        Assert.Equal([1, 11, 19], result.Sagas.Select(s => s.Line));
        Assert.Empty(result.Sagas[1].Triggers);
        Assert.Equal("http", Assert.Single(result.Effects).Name);
        var error = Assert.Single(result.Errors);
        Assert.Equal(16, error.Line);
        Assert.Contains("whitespace", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Document_that_is_not_a_mapping_is_reported()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: http
            provider: http
            http: { url: "http://h/x" }
            ---
            - just
            - a list
            """, File);

        Assert.Single(result.Effects);
        var error = Assert.Single(result.Errors);
        Assert.Equal(6, error.Line);
        Assert.Contains("must be a mapping", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_file_has_nothing_and_no_errors()
    {
        var result = ManifestParser.Parse("# nothing here\n", File);

        Assert.Empty(result.Errors);
        Assert.Empty(result.Sagas);
        Assert.Empty(result.Effects);
    }
}
