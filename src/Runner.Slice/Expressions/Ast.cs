namespace Runner.Slice.Expressions;

internal enum UnaryOp
{
    Negate,
    Not,
}

internal enum BinaryOp
{
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
}

/// <summary>
/// The syntax tree. <see cref="Position"/> is the 0-based offset the node is reported at (an
/// operator for operations); <see cref="Height"/> bounds recursion in every later pass.
/// </summary>
internal abstract record Node(int Position)
{
    public abstract int Height { get; }
}

internal sealed record LiteralNode(Value Value, int Position) : Node(Position)
{
    public override int Height => 1;
}

internal sealed record FieldNode(string Name, int Position) : Node(Position)
{
    public override int Height => 1;
}

internal sealed record UnaryNode(UnaryOp Op, Node Operand, int Position) : Node(Position)
{
    public override int Height { get; } = Operand.Height + 1;
}

internal sealed record BinaryNode(BinaryOp Op, Node Left, Node Right, int Position) : Node(Position)
{
    public override int Height { get; } = Math.Max(Left.Height, Right.Height) + 1;
}

internal sealed record IsNullNode(Node Operand, bool Negated, int Position) : Node(Position)
{
    public override int Height { get; } = Operand.Height + 1;
}

internal sealed record InNode(Node Operand, IReadOnlyList<Node> Items, bool Negated, int Position) : Node(Position)
{
    public override int Height { get; } = Math.Max(Operand.Height, Items.Max(item => item.Height)) + 1;
}

internal sealed record CallNode(string Name, IReadOnlyList<Node> Arguments, int Position) : Node(Position)
{
    public override int Height { get; } = Arguments.Count == 0 ? 1 : Arguments.Max(a => a.Height) + 1;
}
