namespace R1Sharp.Text.Jinja;

/// <summary>Kinds of token the lexer emits: template text, tag delimiters, and the pieces of expressions inside tags.</summary>
internal enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

/// <summary>One token with the 1-based source line it starts on (for error messages).</summary>
internal readonly record struct Token(TokenKind Kind, string Value, int Line)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;
    public bool IsOp(string op) => Kind == TokenKind.Operator && Value == op;

    public override string ToString() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.String => $"string '{Value}'",
        _ => $"'{Value}'",
    };
}

/// <summary>Errors with the template line, as the user must fix the template (or its input).</summary>
internal static class JinjaError
{
    public static R1SharpException At(int line, string message) => new($"chat template line {line}: {message}");
}
