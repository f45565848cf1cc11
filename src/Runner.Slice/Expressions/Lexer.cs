using System.Globalization;
using System.Text;

namespace Runner.Slice.Expressions;

/// <summary>Turns expression text into tokens; every error names the column it is at.</summary>
internal static class Lexer
{
    public static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            if (i >= text.Length)
            {
                tokens.Add(new Token(TokenKind.End, "", text.Length));
                return tokens;
            }

            var c = text[i];
            var start = i;
            if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1])))
            {
                tokens.Add(ReadNumber(text, ref i));
            }
            else if (c is '\'' or '"')
            {
                tokens.Add(ReadString(text, ref i));
            }
            else if (c == '`')
            {
                var close = text.IndexOf('`', i + 1);
                if (close < 0)
                {
                    throw new ExpressionException("unterminated `quoted field name`", start + 1);
                }

                if (close == i + 1)
                {
                    throw new ExpressionException("empty `quoted field name`", start + 1);
                }

                tokens.Add(new Token(TokenKind.QuotedIdentifier, text[(i + 1)..close], start));
                i = close + 1;
            }
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                tokens.Add(ReadIdentifier(text, ref i));
            }
            else
            {
                var (kind, length) = ReadOperator(text, i);
                tokens.Add(new Token(kind, text.Substring(i, length), start));
                i += length;
            }
        }
    }

    private static (TokenKind Kind, int Length) ReadOperator(string text, int i)
    {
        var c = text[i];
        var next = i + 1 < text.Length ? text[i + 1] : '\0';
        return (c, next) switch
        {
            ('=', '=') => (TokenKind.EqualEqual, 2),
            ('!', '=') => (TokenKind.BangEqual, 2),
            ('<', '=') => (TokenKind.LessEqual, 2),
            ('>', '=') => (TokenKind.GreaterEqual, 2),
            ('&', '&') => (TokenKind.AndAnd, 2),
            ('|', '|') => (TokenKind.OrOr, 2),
            ('<', '>') => throw new ExpressionException("'<>' is not an operator; use '!='", i + 1),
            ('=', _) => throw new ExpressionException("'=' is not an operator; use '==' to compare", i + 1),
            ('&', _) => throw new ExpressionException("'&' is not an operator; use 'and' or '&&'", i + 1),
            ('|', _) => throw new ExpressionException("'|' is not an operator; use 'or' or '||'", i + 1),
            ('<', _) => (TokenKind.Less, 1),
            ('>', _) => (TokenKind.Greater, 1),
            ('!', _) => (TokenKind.Bang, 1),
            ('(', _) => (TokenKind.LeftParen, 1),
            (')', _) => (TokenKind.RightParen, 1),
            (',', _) => (TokenKind.Comma, 1),
            ('+', _) => (TokenKind.Plus, 1),
            ('-', _) => (TokenKind.Minus, 1),
            ('*', _) => (TokenKind.Star, 1),
            ('/', _) => (TokenKind.Slash, 1),
            ('%', _) => (TokenKind.Percent, 1),
            _ => throw new ExpressionException($"unexpected character '{c}'", i + 1),
        };
    }

    private static Token ReadIdentifier(string text, ref int i)
    {
        var start = i;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsAsciiLetterOrDigit(c) || c == '_')
            {
                i++;
            }
            else if (c == '.' && i + 1 < text.Length && (char.IsAsciiLetter(text[i + 1]) || text[i + 1] == '_'))
            {
                // A dotted name like customer.id is one field name; the resolver decides what it means.
                i++;
            }
            else
            {
                break;
            }
        }

        return new Token(TokenKind.Identifier, text[start..i], start);
    }

    private static Token ReadNumber(string text, ref int i)
    {
        var start = i;
        var isWhole = true;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        if (i < text.Length && text[i] == '.')
        {
            isWhole = false;
            i++;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }
        }

        if (i < text.Length && text[i] is 'e' or 'E')
        {
            isWhole = false;
            i++;
            if (i < text.Length && text[i] is '+' or '-')
            {
                i++;
            }

            if (i >= text.Length || !char.IsAsciiDigit(text[i]))
            {
                throw new ExpressionException("exponent has no digits", start + 1);
            }

            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }
        }

        if (i < text.Length && (char.IsAsciiLetter(text[i]) || text[i] == '_'))
        {
            throw new ExpressionException($"a number cannot run into a name ('{text[start..(i + 1)]}')", start + 1);
        }

        var raw = text[start..i];
        if (isWhole && long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var whole))
        {
            return new Token(TokenKind.Number, raw, start, Value.FromInteger(whole));
        }

        var number = double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (!double.IsFinite(number))
        {
            throw new ExpressionException($"number {raw} is out of range", start + 1);
        }

        return new Token(TokenKind.Number, raw, start, Value.FromDouble(number));
    }

    private static Token ReadString(string text, ref int i)
    {
        var start = i;
        var quote = text[i++];
        var builder = new StringBuilder();
        while (true)
        {
            if (i >= text.Length)
            {
                throw new ExpressionException("unterminated string", start + 1);
            }

            var c = text[i++];
            if (c == quote)
            {
                break;
            }

            if (c != '\\')
            {
                builder.Append(c);
                continue;
            }

            if (i >= text.Length)
            {
                throw new ExpressionException("unterminated string", start + 1);
            }

            var escaped = text[i++];
            builder.Append(escaped switch
            {
                '\\' => '\\',
                '\'' => '\'',
                '"' => '"',
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                _ => throw new ExpressionException($"unknown escape '\\{escaped}' (known: \\\\ \\' \\\" \\n \\t \\r)", i - 1),
            });
        }

        var value = builder.ToString();
        return new Token(TokenKind.String, text[start..i], start, Value.FromString(value));
    }
}
