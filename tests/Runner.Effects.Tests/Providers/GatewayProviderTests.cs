using System.Text.Json.Nodes;
using Runner.Core.Manifests;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Providers;

public sealed class GatewayProviderTests : EffectsHarness
{
    [Fact]
    public async Task Gateway_receives_the_command_envelope_and_identity_headers()
    {
        await File.WriteAllTextAsync(Secrets.File("gateway-token"), "gw-token\n", TestToken);
        var headers = new Dictionary<string, HeaderValue> { ["Authorization"] = HeaderValue.FromSecret("gateway-token") };
        var command = Effects.Command(effect: "order.cancel");

        var result = await ExecuteAsync(Effects.Gateway(UrlOf("commands/{tenant}"), command: "CancelOrder", headers: headers), command);

        Assert.True(result.Succeeded, result.Error?.Message);
        var request = Assert.Single(Stub.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/commands/acme", request.PathAndQuery);
        Assert.Equal(command.CommandId, request.Headers["Idempotency-Key"]);
        Assert.Equal("acme", request.Headers["x-tenant-id"]);
        Assert.Equal("order 42", request.Headers["x-correlation-id"]);
        Assert.Equal(command.CommandId, request.Headers["x-causation-id"]);
        Assert.Equal(command.TraceParent, request.Headers["traceparent"]);
        Assert.Equal("gw-token", request.Headers["Authorization"]);
        Assert.Equal("application/json", request.Headers["Content-Type"]);
        var expected = new JsonObject
        {
            ["command_id"] = command.CommandId,
            ["command"] = "CancelOrder",
            ["tenant"] = "acme",
            ["correlation_id"] = "order 42",
            ["saga"] = "order-fulfillment",
            ["payload"] = JsonNode.Parse(command.Payload.GetRawText()),
        };
        Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(request.Body)), request.Body);
    }

    [Fact]
    public async Task The_command_name_defaults_to_the_effect_name()
    {
        var result = await ExecuteAsync(Effects.Gateway(UrlOf("commands")), Effects.Command("null", effect: "order.cancel"));

        Assert.True(result.Succeeded, result.Error?.Message);
        var body = JsonNode.Parse(Assert.Single(Stub.Requests).Body)!;
        Assert.Equal("order.cancel", (string?)body["command"]);
        Assert.Null(body["payload"]);
    }

    [Fact]
    public async Task Gateway_answers_are_classified_like_http_ones()
    {
        Stub.Respond("/commands", (_, _) => new StubResponse(409, """{"error":"already cancelled"}"""));

        var result = await ExecuteAsync(Effects.Gateway(UrlOf("commands")), Effects.Command());

        Assert.False(result.Succeeded);
        Assert.Equal("http_409", result.Error!.Code);
        Assert.Contains("already cancelled", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(1, result.Attempts);
    }
}
