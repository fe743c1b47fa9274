namespace R1Sharp.Text.Jinja;

// The syntax tree. Every node keeps its template line so runtime errors can name it.

internal abstract record Node(int Line);

// ---- statements ----
internal sealed record TextNode(int Line, string Text) : Node(Line);
internal sealed record OutputNode(int Line, Expr Value) : Node(Line);
internal sealed record IfNode(int Line, List<(Expr Test, List<Node> Body)> Branches, List<Node>? Else) : Node(Line);
internal sealed record ForNode(int Line, Expr Target, Expr Iter, Expr? Filter, List<Node> Body, List<Node>? Else) : Node(Line);
internal sealed record SetNode(int Line, Expr Target, Expr Value) : Node(Line);
internal sealed record SetBlockNode(int Line, Expr Target, List<Node> Body, List<FilterExpr> Filters) : Node(Line);
internal sealed record MacroNode(int Line, string Name, List<(string Name, Expr? Default)> Params, List<Node> Body) : Node(Line);
internal sealed record BreakNode(int Line) : Node(Line);
internal sealed record ContinueNode(int Line) : Node(Line);
/// <summary>transformers' {% generation %} marks assistant text for masks; rendering just emits the body.</summary>
internal sealed record GenerationNode(int Line, List<Node> Body) : Node(Line);

// ---- expressions ----
internal abstract record Expr(int Line) : Node(Line);
internal sealed record Literal(int Line, object? Value) : Expr(Line);
internal sealed record NameExpr(int Line, string Name) : Expr(Line);
internal sealed record ListExpr(int Line, List<Expr> Items) : Expr(Line);
internal sealed record TupleExpr(int Line, List<Expr> Items) : Expr(Line);
internal sealed record DictExpr(int Line, List<(Expr Key, Expr Value)> Items) : Expr(Line);
internal sealed record GetAttr(int Line, Expr Obj, string Name) : Expr(Line);
internal sealed record GetItem(int Line, Expr Obj, Expr Index) : Expr(Line);
internal sealed record SliceExpr(int Line, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);
internal sealed record CallExpr(int Line, Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
internal sealed record FilterExpr(int Line, Expr? Input, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
internal sealed record TestExpr(int Line, Expr Input, string Name, List<Expr> Args, bool Negated) : Expr(Line);
internal sealed record UnaryExpr(int Line, string Op, Expr Operand) : Expr(Line);
internal sealed record BinaryExpr(int Line, string Op, Expr Left, Expr Right) : Expr(Line);
internal sealed record CompareExpr(int Line, Expr First, List<(string Op, Expr Operand)> Rest) : Expr(Line);
internal sealed record ConcatExpr(int Line, List<Expr> Parts) : Expr(Line);
internal sealed record CondExpr(int Line, Expr Test, Expr Then, Expr? Else) : Expr(Line);
