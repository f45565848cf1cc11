using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class EffectReferenceTests
{
    [Fact]
    public void Script_lists_every_literal_effect_it_commands_with_its_line_and_column()
    {
        var script = Compile("""
            'use strict';
            const CHARGE = Object.freeze({ effect: 'payment.charge' });
            function ship(state, ctx) {
              return { effect: "shipment.create", id: ctx.id('ship'), payload: { order: state.id } };
            }
            function on_event(state, event, ctx) {
              return {
                state: state,
                commands: [ship(state, ctx), { 'effect': `order.cancel`, id: ctx.id('c') }, { ["effect"]: 'audit.log' }],
              };
            }
            """);

        Assert.Equal(
            [
                new EffectReference("payment.charge", 2, 40),
                new EffectReference("shipment.create", 4, 20),
                new EffectReference("order.cancel", 9, 46),
                new EffectReference("audit.log", 9, 95),
            ],
            script.Effects);
    }

    [Fact]
    public void Effect_that_is_not_a_literal_in_an_object_literal_is_not_listed()
    {
        var script = Compile("""
            'use strict';
            function on_event(state, event, ctx) {
              const effect = event.data.effect;
              const name = 'computed.name';
              const byName = { effect };
              const fromVariable = { effect: name };
              const fromTemplate = { effect: `payment.${event.data.kind}` };
              const notAString = { effect: 42 };
              const assigned = {};
              assigned.effect = 'assigned.later';
              const other = { kind: 'not.an.effect', [effect]: 'dynamic.key' };
              return { state: { byName, fromVariable, fromTemplate, notAString, assigned, other } };
            }
            """);

        Assert.Empty(script.Effects);
    }

    [Fact]
    public void Script_commanding_nothing_lists_no_effects()
    {
        Assert.Empty(Compile("function on_event(state, event, ctx) { return { state: state }; }").Effects);
    }
}
