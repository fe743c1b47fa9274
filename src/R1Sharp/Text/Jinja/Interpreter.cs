using System.Text;

namespace R1Sharp.Text.Jinja;

/// <summary>Walks the syntax tree: statements write to the output, expressions evaluate to Python-like values (see Values.cs).</summary>
internal sealed partial class Interpreter
{
    enum Flow { Normal, Break, Continue }

    // Python stops runaway recursion with RecursionError; without a limit a recursive macro would overflow the
    // .NET stack and kill the process. jinja2 nests a few Python frames per macro call, so its ~1000-frame limit
    // is reached well before 1000 macro calls; 200 is far beyond any real template.
    const int MaxMacroDepth = 200;
    int _macroDepth;

    public static string Render(List<Node> nodes, IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new Scope(null);
        Globals.Install(globals);
        var scope = new Scope(globals);
        foreach (var (k, v) in variables) scope.Set(k, Values.FromClr(v));
        var sb = new StringBuilder();
        new Interpreter().Exec(nodes, scope, sb);
        return sb.ToString();
    }

    Flow Exec(List<Node> nodes, Scope scope, StringBuilder sb)
    {
        foreach (var node in nodes)
        {
            var flow = Exec(node, scope, sb);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    Flow Exec(Node node, Scope scope, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode t: sb.Append(t.Text); return Flow.Normal;
            case OutputNode o: sb.Append(PyFormat.Str(Eval(o.Value, scope))); return Flow.Normal;
            case IfNode i:
                foreach (var (test, body) in i.Branches)
                    if (PyOps.Truthy(Eval(test, scope))) return Exec(body, scope, sb);
                return i.Else != null ? Exec(i.Else, scope, sb) : Flow.Normal;
            case ForNode f: ExecFor(f, scope, sb); return Flow.Normal;
            case SetNode s: Assign(s.Target, Eval(s.Value, scope), scope); return Flow.Normal;
            case SetBlockNode sbn:
                var inner = new StringBuilder();
                Exec(sbn.Body, scope, inner);
                object? captured = inner.ToString();
                foreach (var flt in sbn.Filters) captured = ApplyFilter(flt, captured, scope);
                Assign(sbn.Target, captured, scope);
                return Flow.Normal;
            case MacroNode m: scope.Set(m.Name, MakeMacro(m, scope)); return Flow.Normal;
            case GenerationNode g: return Exec(g.Body, scope, sb);
            case BreakNode: return Flow.Break;
            case ContinueNode: return Flow.Continue;
        }
        throw JinjaError.At(node.Line, $"cannot execute {node.GetType().Name}");
    }

    void ExecFor(ForNode f, Scope scope, StringBuilder sb)
    {
        var source = Eval(f.Iter, scope);
        var items = PyOps.Iterate(source, f.Line);
        if (f.Filter != null)
        {
            items = items.Where(item =>
            {
                var probe = new Scope(scope);
                Assign(f.Target, item, probe);
                return PyOps.Truthy(Eval(f.Filter, probe));
            }).ToList();
        }
        var loop = new LoopInfo(items);
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            var iter = new Scope(scope); // each iteration starts fresh, as in jinja2
            iter.Set("loop", loop);
            Assign(f.Target, items[i], iter);
            if (Exec(f.Body, iter, sb) == Flow.Break) break;
        }
        if (items.Count == 0 && f.Else != null) Exec(f.Else, new Scope(scope), sb);
    }

    void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr n:
                scope.Set(n.Name, value);
                return;
            case GetAttr { Obj: NameExpr owner } ga:
                var obj = Lookup(owner, scope);
                if (obj is not Namespace ns)
                    throw JinjaError.At(ga.Line, $"cannot assign attribute '{ga.Name}' on '{owner.Name}': only namespace() objects take attribute assignments");
                ns.Attrs[ga.Name] = value;
                return;
            case TupleExpr t:
                var seq = PyOps.Iterate(value, t.Line);
                if (seq.Count != t.Items.Count)
                    throw JinjaError.At(t.Line, $"cannot unpack {seq.Count} values into {t.Items.Count} names");
                for (int i = 0; i < seq.Count; i++) Assign(t.Items[i], seq[i], scope);
                return;
        }
        throw JinjaError.At(target.Line, "cannot assign to this expression");
    }

    object? Lookup(NameExpr n, Scope scope) =>
        scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined");

    Callable MakeMacro(MacroNode m, Scope defScope) => new(m.Name, (args, kwargs, line) =>
    {
        if (args.Count > m.Params.Count)
            throw JinjaError.At(line, $"macro '{m.Name}' takes at most {m.Params.Count} arguments ({args.Count} given)");
        var local = new Scope(defScope);
        for (int i = 0; i < m.Params.Count; i++)
        {
            var (name, def) = m.Params[i];
            object? v = i < args.Count ? args[i]
                : kwargs.Remove(name, out var kv) ? kv
                : def != null ? Eval(def, local)
                : new Undefined($"parameter '{name}' was not provided");
            local.Set(name, v);
        }
        if (kwargs.Count > 0) throw JinjaError.At(line, $"macro '{m.Name}' takes no keyword argument '{kwargs.Keys.First()}'");
        if (++_macroDepth > MaxMacroDepth)
            throw JinjaError.At(line, $"maximum recursion depth exceeded calling macro '{m.Name}'");
        try
        {
            var sb = new StringBuilder();
            Exec(m.Body, local, sb);
            return sb.ToString();
        }
        finally { _macroDepth--; }
    });
}
