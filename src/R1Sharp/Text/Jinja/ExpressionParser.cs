using System.Globalization;

namespace R1Sharp.Text.Jinja;

/// <summary>
/// Expression grammar, following jinja2's parser level by level so precedence matches:
/// conditional &lt; or &lt; and &lt; not &lt; comparisons (incl. in / not in) &lt; + - &lt; ~ &lt; * / // % &lt; ** &lt; unary - +
/// &lt; postfix (. [] ()) and then filters (|) and tests (is), which bind tighter than any binary operator.
/// </summary>
internal sealed partial class Parser
{
    Expr ParseTupleOrExpression(bool withCondExpr = true)
    {
        int line = Current.Line;
        var first = withCondExpr ? ParseExpression() : ParseOr();
        if (!Current.IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (Current.IsOp(","))
        {
            _i++;
            if (IsTupleEnd()) break;
            items.Add(withCondExpr ? ParseExpression() : ParseOr());
        }
        return new TupleExpr(line, items);
    }

    bool IsTupleEnd() => Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd or TokenKind.End
        || Current.IsOp(")") || Current.IsOp("]") || Current.IsOp("}") || Current.IsName("if") || Current.IsName("in");

    Expr ParseExpression()
    {
        var expr = ParseOr();
        while (Current.IsName("if"))
        {
            int line = Next().Line;
            var test = ParseOr();
            Expr? otherwise = null;
            if (Current.IsName("else")) { _i++; otherwise = ParseExpression(); }
            expr = new CondExpr(line, test, expr, otherwise);
        }
        return expr;
    }

    Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or")) { int line = Next().Line; left = new BinaryExpr(line, "or", left, ParseAnd()); }
        return left;
    }

    Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and")) { int line = Next().Line; left = new BinaryExpr(line, "and", left, ParseNot()); }
        return left;
    }

    Expr ParseNot()
    {
        if (Current.IsName("not")) { int line = Next().Line; return new UnaryExpr(line, "not", ParseNot()); }
        return ParseCompare();
    }

    static readonly HashSet<string> CompareOps = ["==", "!=", "<", ">", "<=", ">="];

    Expr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOps.Contains(Current.Value)) { var op = Next().Value; rest.Add((op, ParseMath1())); }
            else if (Current.IsName("in")) { _i++; rest.Add(("in", ParseMath1())); }
            else if (Current.IsName("not") && Peek().IsName("in")) { _i += 2; rest.Add(("notin", ParseMath1())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(line, first, rest);
    }

    Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.IsOp("+") || Current.IsOp("-")) { var op = Next(); left = new BinaryExpr(op.Line, op.Value, left, ParseConcat()); }
        return left;
    }

    Expr ParseConcat()
    {
        int line = Current.Line;
        var parts = new List<Expr> { ParseMath2() };
        while (Current.IsOp("~")) { _i++; parts.Add(ParseMath2()); }
        return parts.Count == 1 ? parts[0] : new ConcatExpr(line, parts);
    }

    Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.IsOp("*") || Current.IsOp("/") || Current.IsOp("//") || Current.IsOp("%"))
        { var op = Next(); left = new BinaryExpr(op.Line, op.Value, left, ParsePow()); }
        return left;
    }

    Expr ParsePow()
    {
        var left = ParseUnary();
        while (Current.IsOp("**")) { var op = Next(); left = new BinaryExpr(op.Line, "**", left, ParseUnary()); }
        return left;
    }

    Expr ParseUnary(bool withFilter = true)
    {
        var tok = Current;
        Expr node;
        if (tok.IsOp("-")) { _i++; node = new UnaryExpr(tok.Line, "-", ParseUnary(false)); }
        else if (tok.IsOp("+")) { _i++; node = new UnaryExpr(tok.Line, "+", ParseUnary(false)); }
        else node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpr(node) : node;
    }

    Expr ParsePrimary()
    {
        var tok = Next();
        switch (tok.Kind)
        {
            case TokenKind.Name:
                return tok.Value switch
                {
                    "true" or "True" => new Literal(tok.Line, true),
                    "false" or "False" => new Literal(tok.Line, false),
                    "none" or "None" => new Literal(tok.Line, null),
                    _ => new NameExpr(tok.Line, tok.Value),
                };
            case TokenKind.String:
                var s = tok.Value;
                while (Current.Kind == TokenKind.String) s += Next().Value; // adjacent literals join
                return new Literal(tok.Line, s);
            case TokenKind.Integer:
                return new Literal(tok.Line, long.Parse(tok.Value, CultureInfo.InvariantCulture));
            case TokenKind.Float:
                return new Literal(tok.Line, double.Parse(tok.Value, CultureInfo.InvariantCulture));
            case TokenKind.Operator when tok.Value == "(":
                if (Current.IsOp(")")) { _i++; return new TupleExpr(tok.Line, []); }
                var inner = ParseTupleOrExpression();
                Expect(TokenKind.Operator, ")");
                return inner;
            case TokenKind.Operator when tok.Value == "[":
                var items = new List<Expr>();
                while (!Current.IsOp("]"))
                {
                    if (items.Count > 0) Expect(TokenKind.Operator, ",");
                    if (Current.IsOp("]")) break;
                    items.Add(ParseExpression());
                }
                _i++;
                return new ListExpr(tok.Line, items);
            case TokenKind.Operator when tok.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!Current.IsOp("}"))
                {
                    if (pairs.Count > 0) Expect(TokenKind.Operator, ",");
                    if (Current.IsOp("}")) break;
                    var key = ParseExpression();
                    Expect(TokenKind.Operator, ":");
                    pairs.Add((key, ParseExpression()));
                }
                _i++;
                return new DictExpr(tok.Line, pairs);
        }
        throw JinjaError.At(tok.Line, $"unexpected {tok} in expression");
    }

    Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var tok = Current;
            if (tok.IsOp("."))
            {
                _i++;
                var attr = Next();
                if (attr.Kind == TokenKind.Name) node = new GetAttr(tok.Line, node, attr.Value);
                else if (attr.Kind == TokenKind.Integer) node = new GetItem(tok.Line, node, new Literal(tok.Line, long.Parse(attr.Value, CultureInfo.InvariantCulture)));
                else throw JinjaError.At(tok.Line, $"expected an attribute name after '.' but found {attr}");
            }
            else if (tok.IsOp("[")) { _i++; node = new GetItem(tok.Line, node, ParseSubscript()); Expect(TokenKind.Operator, "]"); }
            else if (tok.IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    Expr ParseSubscript()
    {
        int line = Current.Line;
        Expr? start = null, stop = null, step = null;
        if (!Current.IsOp(":"))
        {
            start = ParseExpression();
            if (!Current.IsOp(":")) return start;
        }
        _i++;
        if (!Current.IsOp("]") && !Current.IsOp(":")) stop = ParseExpression();
        if (Current.IsOp(":"))
        {
            _i++;
            if (!Current.IsOp("]")) step = ParseExpression();
        }
        return new SliceExpr(line, start, stop, step);
    }

    (List<Expr>, List<(string, Expr)>) ParseCallArgs()
    {
        int line = Expect(TokenKind.Operator, "(").Line;
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Current.IsOp(")"))
        {
            if (args.Count + kwargs.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOp(")")) break;
            if (Current.IsOp("*") || Current.IsOp("**"))
                throw JinjaError.At(line, "'*args' / '**kwargs' in calls are not supported by R1Sharp's Jinja interpreter");
            if (Current.Kind == TokenKind.Name && Peek().IsOp("="))
            {
                var key = Next().Value;
                _i++;
                kwargs.Add((key, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw JinjaError.At(Current.Line, "positional argument after keyword argument");
                args.Add(ParseExpression());
            }
        }
        _i++;
        return (args, kwargs);
    }

    Expr ParseCall(Expr callee)
    {
        int line = Current.Line;
        var (args, kwargs) = ParseCallArgs();
        return new CallExpr(line, callee, args, kwargs);
    }

    Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Current.IsOp("|")) { _i++; node = ParseFilter(node); }
            else if (Current.IsName("is")) { _i++; node = ParseTest(node); }
            else if (Current.IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    FilterExpr ParseFilter(Expr? input)
    {
        var tok = Expect(TokenKind.Name);
        var name = tok.Value;
        while (Current.IsOp(".")) { _i++; name += "." + Expect(TokenKind.Name).Value; }
        if (!Current.IsOp("(")) return new FilterExpr(tok.Line, input, name, [], []);
        var (args, kwargs) = ParseCallArgs();
        return new FilterExpr(tok.Line, input, name, args, kwargs);
    }

    Expr ParseTest(Expr input)
    {
        bool negated = false;
        if (Current.IsName("not")) { _i++; negated = true; }
        var tok = Expect(TokenKind.Name);
        var name = tok.Value;
        while (Current.IsOp(".")) { _i++; name += "." + Expect(TokenKind.Name).Value; }
        var args = new List<Expr>();
        if (Current.IsOp("("))
        {
            var (a, kw) = ParseCallArgs();
            if (kw.Count > 0) throw JinjaError.At(tok.Line, $"keyword arguments to test '{name}' are not supported");
            args = a;
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                  || Current.IsOp("[") || Current.IsOp("{"))
                 && !Current.IsName("else") && !Current.IsName("or") && !Current.IsName("and"))
        {
            // jinja2 allows one bare argument: "x is divisibleby 3", "x is sameas false"
            if (Current.IsName("is")) throw JinjaError.At(tok.Line, "you cannot chain multiple tests with 'is'");
            args.Add(ParsePostfix(ParsePrimary()));
        }
        return new TestExpr(tok.Line, input, name, args, negated);
    }
}
