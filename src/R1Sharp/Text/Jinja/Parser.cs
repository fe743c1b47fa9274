namespace R1Sharp.Text.Jinja;

/// <summary>
/// Builds the syntax tree from tokens: statements here, expressions in ExpressionParser.cs.
/// Tags jinja2 knows but this interpreter does not run ({% call %}, {% include %}, ...) fail here,
/// at parse time, naming the tag and its line, so a template never renders half-right.
/// </summary>
internal sealed partial class Parser
{
    readonly List<Token> _t;
    readonly Stack<(string Opener, int Line, string[] Terminators)> _open = new(); // for "which block is still open" messages
    int _i;
    int _loopDepth; // break/continue are only valid inside a loop body (jinja2 fails to compile them elsewhere)

    Parser(List<Token> tokens) => _t = tokens;

    public static List<Node> Parse(string source)
    {
        var p = new Parser(Lexer.Tokenize(source));
        var body = p.ParseBody(out var end);
        if (end != null) throw JinjaError.At(p.Current.Line, $"unexpected '{{% {end} %}}' with no open block");
        return body;
    }

    Token Current => _t[_i];
    Token Peek(int k = 1) => _t[Math.Min(_i + k, _t.Count - 1)];
    Token Next() => _t[_i++];

    Token Expect(TokenKind kind, string? value = null)
    {
        var tok = Current;
        if (tok.Kind != kind || (value != null && tok.Value != value))
            throw JinjaError.At(tok.Line, $"expected {(value != null ? $"'{value}'" : kind.ToString())} but found {tok}");
        _i++;
        return tok;
    }

    static readonly HashSet<string> Unsupported =
        ["call", "filter", "include", "import", "from", "extends", "block", "with", "do", "autoescape", "trans", "pluralize"];

    /// <summary>Parses nodes until end of input or a block tag this level does not own; that tag's name is returned in <paramref name="endTag"/>
    /// with the cursor left on its name.</summary>
    List<Node> ParseBody(out string? endTag, params string[] terminators)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var tok = Current;
            switch (tok.Kind)
            {
                case TokenKind.End:
                    endTag = null;
                    return nodes;
                case TokenKind.Text:
                    nodes.Add(new TextNode(tok.Line, tok.Value));
                    _i++;
                    break;
                case TokenKind.VariableBegin:
                    _i++;
                    nodes.Add(new OutputNode(tok.Line, ParseTupleOrExpression()));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    var name = Peek();
                    if (name.Kind == TokenKind.Name && terminators.Contains(name.Value))
                    {
                        _i++;
                        endTag = name.Value;
                        return nodes;
                    }
                    _i++;
                    nodes.Add(ParseStatement());
                    break;
                default:
                    throw JinjaError.At(tok.Line, $"unexpected {tok}");
            }
        }
    }

    List<Node> ParseUntil(string opener, int line, out string endTag, params string[] terminators)
    {
        _open.Push((opener, line, terminators));
        var body = ParseBody(out var end, terminators);
        _open.Pop();
        if (end == null)
            throw JinjaError.At(line, $"'{{% {opener} %}}' is never closed (expected '{{% {string.Join(" %}' or '{% ", terminators)} %}}')");
        endTag = end;
        return body;
    }

    Node ParseStatement()
    {
        var tok = Current;
        if (tok.Kind != TokenKind.Name) throw JinjaError.At(tok.Line, $"expected a tag name after '{{%' but found {tok}");
        _i++;
        switch (tok.Value)
        {
            case "if": return ParseIf(tok.Line);
            case "for": return ParseFor(tok.Line);
            case "set": return ParseSet(tok.Line);
            case "macro": return ParseMacro(tok.Line);
            case "break" or "continue":
                if (_loopDepth == 0) throw JinjaError.At(tok.Line, $"'{{% {tok.Value} %}}' outside a for loop");
                Expect(TokenKind.BlockEnd);
                return tok.Value == "break" ? new BreakNode(tok.Line) : new ContinueNode(tok.Line);
            case "generation":
                Expect(TokenKind.BlockEnd);
                var body = ParseUntil("generation", tok.Line, out _, "endgeneration");
                Expect(TokenKind.Name); Expect(TokenKind.BlockEnd);
                return new GenerationNode(tok.Line, body);
        }
        if (_open.Count > 0 && (tok.Value.StartsWith("end", StringComparison.Ordinal) || tok.Value is "elif" or "else"))
        {
            var (opener, line, terms) = _open.Peek();
            throw JinjaError.At(tok.Line, $"unexpected '{{% {tok.Value} %}}': the innermost open block is '{{% {opener} %}}' from line {line}, " +
                $"which expects '{string.Join("' or '", terms)}'");
        }
        if (Unsupported.Contains(tok.Value))
            throw JinjaError.At(tok.Line, $"'{{% {tok.Value} %}}' is not supported by R1Sharp's Jinja interpreter");
        throw JinjaError.At(tok.Line, $"unknown tag '{{% {tok.Value} %}}'");
    }

    Node ParseIf(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? elseBody = null;
        var test = ParseExpression();
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var body = ParseUntil("if", line, out var end, "elif", "else", "endif");
            branches.Add((test, body));
            Next(); // the terminator's name
            if (end == "elif") { test = ParseExpression(); Expect(TokenKind.BlockEnd); continue; }
            Expect(TokenKind.BlockEnd);
            if (end == "else")
            {
                elseBody = ParseUntil("else", line, out _, "endif");
                Next(); Expect(TokenKind.BlockEnd);
            }
            return new IfNode(line, branches, elseBody);
        }
    }

    Node ParseFor(int line)
    {
        var target = ParseAssignTarget();
        Expect(TokenKind.Name, "in");
        var iter = ParseTupleOrExpression(withCondExpr: false);
        Expr? filter = null;
        if (Current.IsName("if")) { _i++; filter = ParseExpression(); }
        if (Current.IsName("recursive")) throw JinjaError.At(line, "'{% for ... recursive %}' is not supported by R1Sharp's Jinja interpreter");
        Expect(TokenKind.BlockEnd);
        _loopDepth++;
        var body = ParseUntil("for", line, out var end, "else", "endfor");
        _loopDepth--;
        Next(); Expect(TokenKind.BlockEnd);
        List<Node>? elseBody = null;
        if (end == "else")
        {
            elseBody = ParseUntil("for", line, out _, "endfor");
            Next(); Expect(TokenKind.BlockEnd);
        }
        return new ForNode(line, target, iter, filter, body, elseBody);
    }

    Node ParseSet(int line)
    {
        var target = ParseAssignTarget();
        if (Current.IsOp("="))
        {
            _i++;
            var value = ParseTupleOrExpression();
            Expect(TokenKind.BlockEnd);
            return new SetNode(line, target, value);
        }
        var filters = new List<FilterExpr>();
        while (Current.IsOp("|")) { _i++; filters.Add(ParseFilter(null)); }
        Expect(TokenKind.BlockEnd);
        var body = ParseUntil("set", line, out _, "endset");
        Next(); Expect(TokenKind.BlockEnd);
        return new SetBlockNode(line, target, body, filters);
    }

    // A name, ns.attr, or a tuple of names ("a, b" or "(a, b)").
    Expr ParseAssignTarget()
    {
        var first = ParseTargetItem();
        if (!Current.IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (Current.IsOp(","))
        {
            _i++;
            if (Current.Kind != TokenKind.Name && !Current.IsOp("(")) break;
            items.Add(ParseTargetItem());
        }
        return new TupleExpr(first.Line, items);
    }

    Expr ParseTargetItem()
    {
        var tok = Current;
        if (tok.IsOp("("))
        {
            _i++;
            var inner = ParseAssignTarget();
            Expect(TokenKind.Operator, ")");
            return inner;
        }
        var name = Expect(TokenKind.Name);
        if (Current.IsOp("."))
        {
            _i++;
            var attr = Expect(TokenKind.Name);
            return new GetAttr(tok.Line, new NameExpr(tok.Line, name.Value), attr.Value);
        }
        return new NameExpr(tok.Line, name.Value);
    }

    Node ParseMacro(int line)
    {
        var name = Expect(TokenKind.Name).Value;
        Expect(TokenKind.Operator, "(");
        var ps = new List<(string, Expr?)>();
        while (!Current.IsOp(")"))
        {
            if (ps.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOp(")")) break;
            var p = Expect(TokenKind.Name).Value;
            Expr? def = null;
            if (Current.IsOp("=")) { _i++; def = ParseExpression(); }
            ps.Add((p, def));
        }
        _i++;
        Expect(TokenKind.BlockEnd);
        int outerLoops = _loopDepth;
        _loopDepth = 0; // a macro body is its own function: an enclosing loop does not count
        var body = ParseUntil("macro", line, out _, "endmacro");
        _loopDepth = outerLoops;
        Next();
        if (Current.Kind == TokenKind.Name) _i++; // {% endmacro name %}
        Expect(TokenKind.BlockEnd);
        return new MacroNode(line, name, ps, body);
    }
}
