using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class CompensateTests
{
    private const string WithCompensate = """
        'use strict';
        function on_event(state, event, ctx) { return { state: { handler: 'on_event', type: event.type } }; }
        function compensate(state, event, ctx) {
          return {
            state: { handler: 'compensate', before: state },
            commands: [{ effect: 'refund', id: ctx.id('refund'), payload: { key: ctx.key } }],
            done: true
          };
        }
        """;

    private const string WithoutCompensate = """
        'use strict';
        function on_event(state, event, ctx) { return { state: { handler: 'on_event' } }; }
        """;

    [Fact]
    public void Compensate_handler_calls_compensate()
    {
        var script = Compile(WithCompensate);
        Assert.True(script.HasCompensate);

        var output = Succeeds(script, Input(stateJson: """{"step":3}""", handler: ScriptHandler.Compensate));

        Assert.Equal("""{"handler":"compensate","before":{"step":3}}""", output.StateJson);
        Assert.Equal("refund", Assert.Single(output.Commands).Effect);
        Assert.Equal("""{"key":"order-42"}""", output.Commands[0].PayloadJson);
        Assert.True(output.Done);
    }

    [Fact]
    public void On_event_handler_still_calls_on_event_when_compensate_exists()
    {
        var output = Succeeds(Compile(WithCompensate), Input(kind: "created"));

        Assert.Equal("""{"handler":"on_event","type":"order.created"}""", output.StateJson);
    }

    [Fact]
    public void Compensate_without_a_compensate_function_is_script_no_handler()
    {
        var script = Compile(WithoutCompensate);
        Assert.False(script.HasCompensate);

        var failure = Fails(script, Input(handler: ScriptHandler.Compensate));

        AssertCode(ScriptFailure.NoHandler, failure);
        Assert.Contains("compensate", failure.Message, StringComparison.Ordinal);
        Assert.Equal("""{"handler":"on_event"}""", Succeeds(script, Input()).StateJson);
    }
}
