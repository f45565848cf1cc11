using System.Text.Json.Serialization;
using Runner.Core.Transitions;

namespace Runner.Core;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(SagaInstanceRecord))]
[JsonSerializable(typeof(CommandMessage))]
[JsonSerializable(typeof(ScheduleRecord))]
[JsonSerializable(typeof(DedupeRecord))]
[JsonSerializable(typeof(QuarantineRecord))]
[JsonSerializable(typeof(HistoryStep))]
[JsonSerializable(typeof(HeldMessage))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class CoreJsonContext : JsonSerializerContext;
