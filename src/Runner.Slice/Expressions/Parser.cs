namespace Runner.Slice.Expressions;

/// <summary>
/// Recursive descent, one method per precedence level, lowest first:
/// <c>or</c>, <c>and</c>, <c>not</c>, comparison (<c>== != &lt; &lt;= &gt; &gt;=</c>, <c>is [not] null</c>,
/// <c>[not] in (...)</c>; non-associative), <c>+ -</c>, <c>* / %</c>, unary <c>- !</c>, primary.
/// </summary>
internal sealed class Parser
{
    private readonly List<Token> _tokens;
    private readonly ExpressionLimits _limits;
    private int _index;
    private int _depth;

    private Parser(List<Token> tokens, ExpressionLimits limits)
    {
        _tokens = tokens;
        _limits = limits;
    }

    public static Node Parse(string text, ExpressionLimits limits)
    {
        if (text.Length > limits.MaxLength)
        {
            throw new ExpressionException(
                $"expression is {text.Length} characters long; the limit is {limits.MaxLength}", limits.MaxLength + 1);
        }

        var parser = new Parser(Lexer.Tokenize(text), limits);
        if (parser.Current.Kind == TokenKind.End)
        {
            throw new ExpressionException("expression is empty", 1);
        }

        var node = parser.ParseOr();
        if (parser.Current.Kind != TokenKind.End)
        {
            throw parser.Unexpected("an operator or the end of the expression");
        }

        return node;
    }

    private Token Current => _tokens[_index];

    private Token Advance() => _tokens[_index++];

    private bool IsKeyword(string word) =>
        Current.Kind == TokenKind.Identifier && Current.Text == word;

    private bool IsKeywordAt(int offset, string word)
    {
        var token = _tokens[Math.Min(_index + offset, _tokens.Count - 1)];
        return token.Kind == TokenKind.Identifier && token.Text == word;
    }

    private Node ParseOr()
    {
        Enter();
        var left = ParseAnd();
        while (IsKeyword("or") || Current.Kind == TokenKind.OrOr)
        {
            var op = Advance();
            left = Checked(new BinaryNode(BinaryOp.Or, left, ParseAnd(), op.Position));
        }

        _depth--;
        return left;
    }

    private Node ParseAnd()
    {
        var left = ParseNot();
        while (IsKeyword("and") || Current.Kind == TokenKind.AndAnd)
        {
            var op = Advance();
            left = Checked(new BinaryNode(BinaryOp.And, left, ParseNot(), op.Position));
        }

        return left;
    }

    private Node ParseNot()
    {
        if (!IsKeyword("not"))
        {
            return ParseComparison();
        }

        var op = Advance();
        Enter();
        var operand = ParseNot();
        _depth--;
        return Checked(new UnaryNode(UnaryOp.Not, operand, op.Position));
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        Node result;
        if (ComparisonOp(Current.Kind) is { } op)
        {
            var token = Advance();
            result = new BinaryNode(op, left, ParseAdditive(), token.Position);
        }
        else if (IsKeyword("is"))
        {
            var token = Advance();
            var negated = false;
            if (IsKeyword("not"))
            {
                Advance();
                negated = true;
            }

            if (!IsKeyword("null"))
            {
                throw Unexpected(negated ? "'null' after 'is not'" : "'null' or 'not null' after 'is'");
            }

            Advance();
            result = new IsNullNode(left, negated, token.Position);
        }
        else if (IsKeyword("in") || (IsKeyword("not") && IsKeywordAt(1, "in")))
        {
            var token = Advance();
            var negated = token.Text == "not";
            if (negated)
            {
                Advance();
            }

            result = new InNode(left, ParseList(), negated, token.Position);
        }
        else
        {
            return left;
        }

        result = Checked(result);
        if (ComparisonOp(Current.Kind) is not null || IsKeyword("is") || IsKeyword("in"))
        {
            throw new ExpressionException(
                "comparisons do not chain; combine them with 'and'", Current.Position + 1);
        }

        return result;
    }

    private List<Node> ParseList()
    {
        Expect(TokenKind.LeftParen, "'(' to start the list after 'in'");
        var items = new List<Node> { ParseOr() };
        while (Current.Kind == TokenKind.Comma)
        {
            Advance();
            items.Add(ParseOr());
        }

        Expect(TokenKind.RightParen, "',' or ')' in the 'in' list");
        return items;
    }

    private Node ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Current.Kind is TokenKind.Plus or TokenKind.Minus)
        {
            var op = Advance();
            var kind = op.Kind == TokenKind.Plus ? BinaryOp.Add : BinaryOp.Subtract;
            left = Checked(new BinaryNode(kind, left, ParseMultiplicative(), op.Position));
        }

        return left;
    }

    private Node ParseMultiplicative()
    {
        var left = ParseUnary();
        while (Current.Kind is TokenKind.Star or TokenKind.Slash or TokenKind.Percent)
        {
            var op = Advance();
            var kind = op.Kind switch
            {
                TokenKind.Star => BinaryOp.Multiply,
                TokenKind.Slash => BinaryOp.Divide,
                _ => BinaryOp.Remainder,
            };
            left = Checked(new BinaryNode(kind, left, ParseUnary(), op.Position));
        }

        return left;
    }

    private Node ParseUnary()
    {
        if (Current.Kind is not (TokenKind.Minus or TokenKind.Bang))
        {
            return ParsePrimary();
        }

        var op = Advance();
        Enter();
        var operand = ParseUnary();
        _depth--;
        var kind = op.Kind == TokenKind.Minus ? UnaryOp.Negate : UnaryOp.Not;
        return Checked(new UnaryNode(kind, operand, op.Position));
    }

    private Node ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Number:
            case TokenKind.String:
                Advance();
                return new LiteralNode(token.Literal, token.Position);
            case TokenKind.QuotedIdentifier:
                Advance();
                return new FieldNode(token.Text, token.Position);
            case TokenKind.LeftParen:
                Advance();
                var inner = ParseOr();
                Expect(TokenKind.RightParen, "')'");
                return inner;
            case TokenKind.Identifier:
                return ParseName();
            default:
                throw Unexpected("a value, a field name, a function call or '('");
        }
    }

    private Node ParseName()
    {
        var token = Advance();
        switch (token.Text)
        {
            case "true":
                return new LiteralNode(Value.True, token.Position);
            case "false":
                return new LiteralNode(Value.False, token.Position);
            case "null":
                return new LiteralNode(Value.Null, token.Position);
            case "and" or "or" or "not" or "is" or "in":
                throw new ExpressionException(
                    $"'{token.Text}' is a keyword; quote a field with that name as `{token.Text}`", token.Position + 1);
        }

        if (Current.Kind != TokenKind.LeftParen)
        {
            return new FieldNode(token.Text, token.Position);
        }

        Advance();
        Enter();
        var arguments = new List<Node>();
        if (Current.Kind != TokenKind.RightParen)
        {
            arguments.Add(ParseOr());
            while (Current.Kind == TokenKind.Comma)
            {
                Advance();
                arguments.Add(ParseOr());
            }
        }

        Expect(TokenKind.RightParen, $"',' or ')' in the arguments of {token.Text}()");
        _depth--;
        return Checked(new CallNode(token.Text, arguments, token.Position));
    }

    private static BinaryOp? ComparisonOp(TokenKind kind) => kind switch
    {
        TokenKind.EqualEqual => BinaryOp.Equal,
        TokenKind.BangEqual => BinaryOp.NotEqual,
        TokenKind.Less => BinaryOp.Less,
        TokenKind.LessEqual => BinaryOp.LessOrEqual,
        TokenKind.Greater => BinaryOp.Greater,
        TokenKind.GreaterEqual => BinaryOp.GreaterOrEqual,
        _ => null,
    };

    private void Expect(TokenKind kind, string what)
    {
        if (Current.Kind != kind)
        {
            throw Unexpected(what);
        }

        Advance();
    }

    private void Enter()
    {
        if (++_depth > _limits.MaxDepth)
        {
            throw new ExpressionException(
                $"expression nests deeper than {_limits.MaxDepth} levels", Current.Position + 1);
        }
    }

    private Node Checked(Node node) =>
        node.Height > _limits.MaxDepth
            ? throw new ExpressionException(
                $"expression nests deeper than {_limits.MaxDepth} levels", node.Position + 1)
            : node;

    private ExpressionException Unexpected(string expected)
    {
        var token = Current;
        var found = token.Kind == TokenKind.End ? "the end of the expression" : $"'{token.Text}'";
        return new ExpressionException($"expected {expected}, found {found}", token.Position + 1);
    }
}
