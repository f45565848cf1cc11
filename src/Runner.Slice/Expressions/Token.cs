namespace Runner.Slice.Expressions;

internal enum TokenKind
{
    End,
    Number,
    String,
    Identifier,
    QuotedIdentifier,
    LeftParen,
    RightParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqualEqual,
    BangEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    AndAnd,
    OrOr,
}

/// <summary>One token; <see cref="Position"/> is the 0-based offset of its first character.</summary>
internal readonly record struct Token(TokenKind Kind, string Text, int Position, Value Literal = default);
