using System.Text.Json.Nodes;
using Polly.CircuitBreaker;
using Runner.Effects.Resilience;

namespace Runner.Host.Operations;

/// <summary>
/// <c>breakers</c> in <c>GET /info</c>: per effect and upstream this process has called, the
/// circuit's state, the commands it holds back now and how often it opened. Null on a node that
/// runs no effect workers.
/// </summary>
internal sealed class BreakerInfoContributor(RunnerControl control) : IInfoContributor
{
    public string Section => "breakers";

    public JsonNode? Describe()
    {
        if (control.Components?.Effects?.Executor is not EffectExecutor executor)
        {
            return null;
        }
        var breakers = executor.Pipelines.BreakerStates()
            .OrderBy(b => b.Effect, StringComparer.Ordinal)
            .ThenBy(b => b.Upstream, StringComparer.Ordinal);
        return JsonNodes.Array(breakers, b => new JsonObject
            {
                ["effect"] = b.Effect,
                ["upstream"] = b.Upstream,
                ["state"] = b.State switch
                {
                    CircuitState.Closed => "closed",
                    CircuitState.HalfOpen => "half_open",
                    CircuitState.Open => "open",
                    _ => "isolated",
                },
                ["held"] = b.Held,
                ["opened"] = b.Opened,
            });
    }
}
