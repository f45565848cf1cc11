using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class ManifestLoaderTests
{
    private static readonly Func<string, string?> s_noEnvironment = _ => null;

    private const string Saga = """
        kind: saga
        name: orders
        script: orders.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.order.*.>"
            correlation: "subject[3]"
        """;

    private const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          if (event.type === 'paid') {
            return { state: state, commands: [{ effect: 'shipment.create', id: ctx.id('ship') }] };
          }
          return {
            state: state,
            commands: [{ effect: 'payment.charge', id: ctx.id('charge') }],
          };
        }
        """;

    private const string PaymentEffect = """
        kind: effect
        name: payment.charge
        provider: http
        http: { url: "${PAYMENTS_URL:-http://127.0.0.1:8089}/charges" }
        """;

    private const string ShipmentEffect = """
        kind: effect
        name: shipment.create
        provider: http
        http: { url: "http://shipping.internal/shipments" }
        """;

    private static string ShippedManifests =>
        Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "manifests"));

    private static TempDirectory Write(params (string Name, string Content)[] files)
    {
        var dir = new TempDirectory("runner-manifests");
        foreach (var (name, content) in files)
        {
            File.WriteAllText(dir.File(name), content);
        }
        return dir;
    }

    [Fact]
    public void Saga_commanding_an_undeclared_effect_is_an_error_at_the_script_line()
    {
        using var dir = Write(("orders.yaml", Saga), ("orders.js", Script), ("effects.yaml", PaymentEffect));

        var result = ManifestLoader.Load(dir.Path, new StreamNames(), s_noEnvironment);

        Assert.False(result.Succeeded);
        Assert.Null(result.Set);
        var error = Assert.Single(result.Errors);
        Assert.Equal(Path.GetFullPath(dir.File("orders.js")), error.File);
        Assert.Equal((4, 49), (error.Line, error.Column));
        Assert.Equal("saga 'orders': script commands effect 'shipment.create' which no effect manifest declares", error.Message);
    }

    [Fact]
    public void Every_command_of_an_undeclared_effect_is_reported()
    {
        using var dir = Write(("orders.yaml", Saga), ("orders.js", Script));

        var result = ManifestLoader.Load(dir.Path, new StreamNames(), s_noEnvironment);

        Assert.Equal(
            [(4, "shipment.create"), (8, "payment.charge")],
            result.Errors.Select(e => (e.Line, e.Message.Split('\'')[3])));
    }

    [Fact]
    public void Saga_commanding_only_declared_effects_loads_with_its_effects_parsed()
    {
        using var dir = Write(("orders.yaml", Saga), ("orders.js", Script), ("effects.yaml", PaymentEffect + "\n---\n" + ShipmentEffect));

        var result = ManifestLoader.Load(dir.Path, new StreamNames(), name => name == "PAYMENTS_URL" ? "https://payments.example" : null);

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Equal("https://payments.example/charges", result.Set!.Effect("payment.charge")!.Http!.Url);
        Assert.Equal("http://shipping.internal/shipments", result.Set.Effect("shipment.create")!.Http!.Url);
    }

    [Fact]
    public void Effect_named_by_a_variable_is_left_to_the_worker()
    {
        using var dir = Write(("orders.yaml", Saga), ("orders.js", """
            'use strict';
            function on_event(state, event, ctx) {
              const effect = event.data.effect;
              return { state: state, commands: [{ effect: effect, id: ctx.id('x') }] };
            }
            """));

        var result = ManifestLoader.Load(dir.Path, new StreamNames(), s_noEnvironment);

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
    }

    [Fact]
    public void Effect_declared_with_errors_is_not_also_reported_as_undeclared()
    {
        using var dir = Write(("orders.yaml", Saga), ("orders.js", Script), ("effects.yaml", ShipmentEffect + "\n---\n" + """
            kind: effect
            name: payment.charge
            provider: http
            http: { url: "${PAYMENTS_URL}/charges" }
            """));

        var result = ManifestLoader.Load(dir.Path, new StreamNames(), s_noEnvironment);

        var error = Assert.Single(result.Errors);
        Assert.Equal(Path.Combine(dir.Path, "effects.yaml"), error.File);
        Assert.Equal(9, error.Line);
        Assert.Contains("'PAYMENTS_URL' is not set", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shipped_manifests_load_with_loopback_defaults_when_the_environment_sets_no_urls()
    {
        var result = ManifestLoader.Load(ShippedManifests, new StreamNames(), s_noEnvironment);

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Equal("http://127.0.0.1:8089/payments/charges", result.Set!.Effect("payment.charge")!.Http!.Url);
        Assert.Equal("http://127.0.0.1:8089/shipping/shipments", result.Set.Effect("shipment.create")!.Http!.Url);
        Assert.Equal("http://127.0.0.1:8089/gateway/commands", result.Set.Effect("order.cancel")!.Gateway!.Url);
    }

    [Fact]
    public void Shipped_manifests_take_their_urls_from_the_environment()
    {
        var environment = new Dictionary<string, string> { ["STUB_URL"] = "https://stub.example", ["GATEWAY_URL"] = "https://gateway.example" };

        var result = ManifestLoader.Load(ShippedManifests, new StreamNames(), environment.GetValueOrDefault);

        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Equal("https://stub.example/payments/charges", result.Set!.Effect("payment.charge")!.Http!.Url);
        Assert.Equal("https://gateway.example/commands", result.Set.Effect("order.cancel")!.Gateway!.Url);
    }

    [Fact]
    public void Loader_reads_the_process_environment_when_given_none()
    {
        var variable = "RUNNER_TEST_URL_" + Guid.NewGuid().ToString("N");
        using var dir = Write(("effects.yaml", $"kind: effect\nname: e\nprovider: http\nhttp: {{ url: \"${{{variable}}}/x\" }}\n"));
        Environment.SetEnvironmentVariable(variable, "http://from-process.internal");
        try
        {
            var result = ManifestLoader.Load(dir.Path, new StreamNames());

            Assert.True(result.Succeeded, string.Join("; ", result.Errors));
            Assert.Equal("http://from-process.internal/x", result.Set!.Effect("e")!.Http!.Url);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }
}
