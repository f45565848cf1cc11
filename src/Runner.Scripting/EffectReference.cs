using Acornima.Ast;

namespace Runner.Scripting;

/// <summary>An effect a script names with a string literal (<c>effect: 'payment.charge'</c>), and where.</summary>
internal sealed record EffectReference(string Effect, int Line, int Column)
{
    /// <summary>
    /// Every string-literal value of a property named <c>effect</c> in an object literal anywhere
    /// in the program, in source order. A computed value (<c>effect: name</c>) cannot be known
    /// before the script runs and is left to the worker that receives the command.
    /// </summary>
    public static IReadOnlyList<EffectReference> FindAll(Node program)
    {
        var found = new List<EffectReference>();
        // An explicit stack: a deeply nested script must not overflow this walk's thread stack.
        var pending = new Stack<Node>();
        pending.Push(program);
        while (pending.Count > 0)
        {
            var node = pending.Pop();
            if (node is ObjectExpression obj)
            {
                foreach (var member in obj.Properties)
                {
                    if (member is Property { Kind: PropertyKind.Init, Method: false } property
                        && IsEffectKey(property)
                        && StaticString(property.Value) is { } effect)
                    {
                        var at = property.Value.Location.Start;
                        found.Add(new EffectReference(effect, at.Line, at.Column + 1));
                    }
                }
            }
            foreach (var child in node.ChildNodes)
            {
                pending.Push(child);
            }
        }
        found.Sort((a, b) => a.Line != b.Line ? a.Line.CompareTo(b.Line) : a.Column.CompareTo(b.Column));
        return found;
    }

    private static bool IsEffectKey(Property property) => property.Key switch
    {
        Identifier { Name: "effect" } => !property.Computed,
        StringLiteral { Value: "effect" } => true,
        _ => false,
    };

    private static string? StaticString(Node value) => value switch
    {
        StringLiteral literal => literal.Value,
        TemplateLiteral { Expressions.Count: 0, Quasis: [var only] } => only.Value.Cooked,
        _ => null,
    };
}
