using System.Text.Json;

namespace Runner.Core.Json;

/// <summary>JSON <c>null</c> as an element of its own: a state, payload or result that is absent.</summary>
internal static class JsonNull
{
    public static JsonElement Element { get; } = JsonElement.Parse("null");
}
