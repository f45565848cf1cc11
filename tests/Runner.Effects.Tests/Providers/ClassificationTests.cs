using System.Net;
using System.Text;
using Runner.Core.Manifests;
using Runner.Effects.Providers;
using Xunit;

namespace Runner.Effects.Tests.Providers;

/// <summary>Answers the stub cannot produce: bodies of unknown length (chunked), odd statuses.</summary>
public sealed class ClassificationTests
{
    private static HttpResponseMessage Response(int status, string body) =>
        new((HttpStatusCode)status) { Content = new StreamContent(new UnknownLengthStream(Encoding.UTF8.GetBytes(body))) };

    [Fact]
    public async Task A_body_of_unknown_length_over_the_limit_is_too_large()
    {
        using var response = Response(200, "\"" + new string('a', HttpExchange.MaxResponseBytes) + "\"");

        var outcome = await HttpExchange.ClassifyAsync(response, CancellationToken.None);

        Assert.Equal(EffectErrorCodes.ResponseTooLarge, outcome.Error!.Code);
        Assert.Null(outcome.RetryClass);
    }

    [Fact]
    public async Task A_body_of_unknown_length_at_the_limit_is_the_result()
    {
        var body = "\"" + new string('a', HttpExchange.MaxResponseBytes - 2) + "\"";
        using var response = Response(200, body);

        var outcome = await HttpExchange.ClassifyAsync(response, CancellationToken.None);

        Assert.True(outcome.Succeeded);
        Assert.Equal(body, outcome.ResultJson);
    }

    [Theory]
    [InlineData(429, RetryOn.TooManyRequests)]
    [InlineData(500, RetryOn.ServerError)]
    [InlineData(502, RetryOn.ServerError)]
    [InlineData(400, null)]
    [InlineData(404, null)]
    [InlineData(304, null)]
    public async Task Statuses_map_to_codes_and_retry_classes(int status, string? retryClass)
    {
        using var response = Response(status, "{}");

        var outcome = await HttpExchange.ClassifyAsync(response, CancellationToken.None);

        Assert.False(outcome.Succeeded);
        Assert.Equal($"http_{status}", outcome.Error!.Code);
        Assert.Equal(status, outcome.Error.Status);
        Assert.Equal(retryClass, outcome.RetryClass);
    }

    [Fact]
    public async Task A_byte_order_mark_before_json_is_dropped()
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([0xEF, 0xBB, 0xBF, .. "{\"a\":1}"u8]) };

        var outcome = await HttpExchange.ClassifyAsync(response, CancellationToken.None);

        Assert.Equal("{\"a\":1}", outcome.ResultJson);
    }

    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
