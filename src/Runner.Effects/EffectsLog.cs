using Microsoft.Extensions.Logging;

namespace Runner.Effects;

/// <summary>Effect log messages; event ids 4000–4999.</summary>
internal static partial class EffectsLog
{
    [LoggerMessage(4000, LogLevel.Debug, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId} succeeded after {Attempts} attempts")]
    public static partial void Succeeded(ILogger logger, string effect, string commandId, string tenant, string correlationId, int attempts);

    [LoggerMessage(4001, LogLevel.Warning, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId} failed after {Attempts} attempts: {Code}: {Reason}")]
    public static partial void Failed(ILogger logger, string effect, string commandId, string tenant, string correlationId, int attempts, string code, string reason);

    [LoggerMessage(4002, LogLevel.Information, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId}: attempt {Attempt} failed ({Reason}), retrying in {DelayMs} ms")]
    public static partial void Retrying(ILogger logger, string effect, string commandId, string tenant, string correlationId, int attempt, string reason, double delayMs);

    [LoggerMessage(4003, LogLevel.Warning, "circuit of effect {Effect} to {Upstream} opened for {BreakMs} ms: {Reason}")]
    public static partial void CircuitOpened(ILogger logger, string effect, string upstream, double breakMs, string reason);

    [LoggerMessage(4004, LogLevel.Information, "circuit of effect {Effect} to {Upstream} closed")]
    public static partial void CircuitClosed(ILogger logger, string effect, string upstream);

    [LoggerMessage(4005, LogLevel.Error, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId}: provider {Provider} threw on attempt {Attempt}")]
    public static partial void ProviderThrew(ILogger logger, Exception exception, string effect, string commandId, string tenant, string correlationId, string provider, int attempt);

    [LoggerMessage(4006, LogLevel.Information, "circuit of effect {Effect} to {Upstream} is half-open: the next call is a probe")]
    public static partial void CircuitHalfOpened(ILogger logger, string effect, string upstream);

    [LoggerMessage(4007, LogLevel.Error, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId}: cannot prepare a call with provider {Provider} (its upstream, or a resilience pipeline from the effect's policies)")]
    public static partial void PrepareFailed(ILogger logger, Exception exception, string effect, string commandId, string tenant, string correlationId, string provider);

    [LoggerMessage(4008, LogLevel.Debug, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId}: the circuit to {Upstream} is open; holding the command (after {Attempts} attempts) until it lets a call through")]
    public static partial void Held(ILogger logger, string effect, string commandId, string tenant, string correlationId, string upstream, int attempts);

    [LoggerMessage(4009, LogLevel.Information, "effect {Effect} command {CommandId} tenant={Tenant} correlation={CorrelationId}: held by the open circuit to {Upstream} while the worker stops taking commands; handed back after {Attempts} attempts")]
    public static partial void HandedBack(ILogger logger, string effect, string commandId, string tenant, string correlationId, string upstream, int attempts);
}
