using Microsoft.Extensions.Logging;

namespace Runner.Sagas.Instances;

/// <summary>Instance inspection log messages; event ids 3400–3419.</summary>
internal static partial class InstancesLog
{
    [LoggerMessage(3400, LogLevel.Debug, "answered show {Tenant}/{Saga}/{Key} for partition {Partition}: found={Found}")]
    public static partial void Shown(ILogger logger, string tenant, string saga, string key, int partition, bool found);
}
