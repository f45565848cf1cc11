using System.Diagnostics;
using Runner.Core.Manifests;
using Runner.Core.Transitions;

namespace Runner.Scripting.Tests;

/// <summary>Compiles test scripts and builds inputs.</summary>
internal static class Scripts
{
    public const string Saga = "orders";
    public const string Tenant = "acme";
    public const long Now = 1_700_000_000_123;

    /// <summary>Generous bound for "stopped within its limit": far above every limit used, far below a hang.</summary>
    public static readonly TimeSpan HangBound = TimeSpan.FromSeconds(20);

    public static SagaScript Compile(string source, ScriptLimits? limits = null, string file = "orders.js")
    {
        var ok = SagaScript.TryCompile(Saga, file, source, limits ?? ScriptLimits.Default, out var script, out var errors);
        Assert.True(ok, "script should compile: " + string.Join("; ", errors));
        Assert.Empty(errors);
        return script!;
    }

    public static List<ManifestError> Reject(string source, ScriptLimits? limits = null, string file = "orders.js")
    {
        var ok = SagaScript.TryCompile(Saga, file, source, limits ?? ScriptLimits.Default, out var script, out var errors);
        Assert.False(ok, "script should be rejected");
        Assert.Null(script);
        Assert.NotEmpty(errors);
        return errors;
    }

    public static ScriptInput Input(
        string kind = "normal",
        string eventId = "evt-1",
        string? stateJson = null,
        long nowMs = Now,
        string key = "order-42",
        ScriptHandler handler = ScriptHandler.OnEvent) =>
        new(stateJson, $$$"""{"id":"{{{eventId}}}","type":"order.{{{kind}}}","data":{"kind":"{{{kind}}}"}}""", eventId, nowMs, Tenant, Saga, key, handler);

    public static TransitionOutput Succeeds(SagaScript script, ScriptInput input)
    {
        var result = script.Run(input);
        Assert.True(result.Succeeded, $"expected success, got {result.Failure}");
        Assert.Null(result.Failure);
        return result.Output!;
    }

    public static ScriptFailure Fails(SagaScript script, ScriptInput input)
    {
        var result = script.Run(input);
        Assert.False(result.Succeeded, "expected a failure, got " + result.Output?.StateJson);
        Assert.Null(result.Output);
        return result.Failure!;
    }

    public static void AssertCode(string expected, ScriptFailure? failure) =>
        Assert.True(failure?.Code == expected, $"expected {expected}, got {(failure is null ? "success" : failure.ToString())}");

    /// <summary>Runs on another thread so a script that is not stopped fails the test instead of hanging it.</summary>
    public static async Task<(ScriptResult Result, TimeSpan Elapsed)> RunBounded(SagaScript script, ScriptInput input)
    {
        var watch = Stopwatch.StartNew();
        var result = await Task.Run(() => script.Run(input)).WaitAsync(HangBound);
        return (result, watch.Elapsed);
    }
}
