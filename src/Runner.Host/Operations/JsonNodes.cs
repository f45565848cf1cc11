using System.Text.Json.Nodes;

namespace Runner.Host.Operations;

/// <summary>Small builders for the reports written as JSON nodes (<c>/info</c>): only values the node model writes itself, so nothing is serialized by reflection.</summary>
internal static class JsonNodes
{
    /// <summary>An array of <paramref name="values"/>, each written as <paramref name="node"/> makes it.</summary>
    public static JsonArray Array<T>(IEnumerable<T> values, Func<T, JsonNode?> node) => new([.. values.Select(node)]);

    /// <summary>
    /// A value the runtime hands out boxed (<see cref="GC.GetConfigurationVariables"/>): a number, a flag or a text as such;
    /// anything else as its text.
    /// </summary>
    public static JsonNode? Value(object? value) => value switch
    {
        null => null,
        bool flag => flag,
        int number => number,
        long number => number,
        ulong number => number,
        uint number => number,
        double number => number,
        string text => text,
        _ => value.ToString(),
    };
}
