using Runner.Core.Manifests;
using Xunit;

namespace Runner.Core.Tests.Manifests;

public sealed class PublishManifestTests
{
    [Fact]
    public void A_publish_effect_declares_its_subject_and_type_templates()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: pipeline.notify
            provider: publish
            publish: { subject: "pipeline.{tenant}.{payload.pipeline}.run.{payload.outcome}", type: "pipeline.run.{payload.outcome}" }
            """, "effects.yaml");

        Assert.Empty(result.Errors);
        var effect = Assert.Single(result.Effects);
        Assert.Equal("pipeline.{tenant}.{payload.pipeline}.run.{payload.outcome}", effect.Publish!.Subject);
        Assert.Equal("pipeline.run.{payload.outcome}", effect.Publish.Type);
    }

    [Theory]
    [InlineData("pipeline.{tenant}x.done", "must be a whole token")]
    [InlineData("pipeline..done", "empty token")]
    [InlineData("pipeline.*.done", "wildcard")]
    [InlineData("pipeline.{nope}.done", "unknown placeholder")]
    [InlineData("pipeline.{tenant.done", "not closed")]
    public void A_bad_subject_template_is_an_error_with_its_line(string subject, string expected)
    {
        var result = ManifestParser.Parse($$"""
            kind: effect
            name: pipeline.notify
            provider: publish
            publish:
              subject: "{{subject}}"
            """, "effects.yaml");

        Assert.Contains(result.Errors, e => e.Message.Contains(expected, StringComparison.Ordinal));
        Assert.All(result.Errors, e => Assert.Equal(5, e.Line));
    }

    [Fact]
    public void A_publish_effect_without_its_block_or_with_another_providers_block_is_refused()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: pipeline.notify
            provider: publish
            http: { url: "http://127.0.0.1/x" }
            """, "effects.yaml");

        Assert.Contains(result.Errors, e => e.Message.Contains("needs a 'publish' block with at least a 'subject'", StringComparison.Ordinal));
        Assert.Contains(result.Errors, e => e.Message.Contains("'http' is only for provider http", StringComparison.Ordinal));
    }

    [Fact]
    public void Slice_paths_take_environment_variables_with_defaults()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: slice.launch
            provider: slice
            slice: { paths: { ro: ["${DATA:-/srv/data}"], rw: ["${OUT}"] } }
            """, "effects.yaml", name => name == "OUT" ? "/srv/out" : null);

        Assert.Empty(result.Errors);
        var slice = Assert.Single(result.Effects).Slice!;
        Assert.Equal(["/srv/data"], slice.ReadOnlyRoots);
        Assert.Equal(["/srv/out"], slice.ReadWriteRoots);
    }
}
