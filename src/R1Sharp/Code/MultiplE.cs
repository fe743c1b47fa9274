using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace R1Sharp.Code;

/// <summary>
/// MultiPL-E's C# HumanEval split into a solution and a fixed harness, so the harness compiles once per problem.
/// A MultiPL-E program is prompt + completion + tests: the prompt holds the usings, "class Problem {", a comment and
/// the method's opening line; the completion (cut at "\n    }\n") the body; the tests close the method and add
/// Main's Debug.Assert calls and the class's closing brace. Here the solution is the prompt with the class made partial,
/// the completion and the closing braces; the harness is the usings and a partial class Problem holding Main.
/// </summary>
/// <remarks>
/// Deviation, on purpose: MultiPL-E's tests compare results with <c>a.Equals(b)</c>, which for List and Dictionary is
/// reference equality in .NET, so the 44 problems returning one fail for every solution under MultiPL-E's own harness
/// (csc /d:DEBUG and mono). The harness here rewrites each such call (a Roslyn syntax rewrite, harness only) to a
/// structural comparison: sequences element by element, dictionaries by key, tuples by item, anything else by Equals.
/// </remarks>
public static partial class MultiplE
{
    const string Helper = """

        static class R1SharpStructural
        {
            public static bool Equal(object a, object b)
            {
                if (a is null || b is null) return a is null && b is null;
                if (a is string || b is string) return a.Equals(b);
                if (a is System.Collections.IDictionary da && b is System.Collections.IDictionary db)
                {
                    if (da.Count != db.Count) return false;
                    foreach (System.Collections.DictionaryEntry e in da)
                        if (!db.Contains(e.Key) || !Equal(e.Value, db[e.Key])) return false;
                    return true;
                }
                if (a is System.Runtime.CompilerServices.ITuple ta && b is System.Runtime.CompilerServices.ITuple tb)
                {
                    if (ta.Length != tb.Length) return false;
                    for (int i = 0; i < ta.Length; i++) if (!Equal(ta[i], tb[i])) return false;
                    return true;
                }
                if (a is System.Collections.IEnumerable ea && b is System.Collections.IEnumerable eb)
                {
                    var ia = ea.GetEnumerator(); var ib = eb.GetEnumerator();
                    while (true)
                    {
                        bool ma = ia.MoveNext(), mb = ib.MoveNext();
                        if (ma != mb) return false;
                        if (!ma) return true;
                        if (!Equal(ia.Current, ib.Current)) return false;
                    }
                }
                return a.Equals(b);
            }
        }
        """;

    /// <summary>The usings of a prompt (everything before "class Problem").</summary>
    static string Usings(string prompt)
    {
        int at = ClassProblem().Match(prompt) is { Success: true } m ? m.Index : 0;
        return prompt[..at];
    }

    /// <summary>prompt (class made partial) + completion + the method's and the class's closing braces.</summary>
    public static string Solution(string prompt, string completion) => Partial(prompt) + completion + "\n    }\n}\n";

    /// <summary>A chat answer's code block: a whole class (made partial), one or more methods (wrapped in the partial
    /// class), or a body continuing the prompt; the prompt's usings go in front.</summary>
    public static string ChatSolution(string prompt, string code, string? entry)
    {
        if (ClassProblem().IsMatch(code)) return Usings(prompt) + Partial(code);
        if (entry is not null && Regex.IsMatch(code, @"\b" + Regex.Escape(entry) + @"\s*\([^)]*\)\s*\{")) return Usings(prompt) + "partial class Problem {\n" + code + "\n}\n";
        return Solution(prompt, code);
    }

    static string Partial(string text) => ClassProblem().Replace(text, m => m.Value.Contains("partial") ? m.Value : m.Value.Replace("class Problem", "partial class Problem"), 1);

    /// <summary>The harness: the prompt's usings, Main (the tests without their first line, which closes the method)
    /// inside a partial class Problem, with .Equals comparisons made structural.</summary>
    public static string Harness(string prompt, string tests)
    {
        int firstLine = tests.IndexOf('\n');
        string main = firstLine >= 0 && tests[..firstLine].Trim() == "}" ? tests[(firstLine + 1)..] : tests;
        string text = Usings(prompt) + "partial class Problem {\n" + main;
        var tree = CSharpSyntaxTree.ParseText(text);
        var rewritten = new StructuralEquals().Visit(tree.GetRoot());
        return rewritten.ToFullString() + Helper;
    }

    /// <summary>The C# method a MultiPL-E prompt opens: the name before "(" on its last line.</summary>
    public static string? EntryPoint(string prompt)
    {
        var last = prompt.TrimEnd().Split('\n')[^1];
        return EntryName().Match(last) is { Success: true } m ? m.Groups[1].Value : null;
    }

    sealed class StructuralEquals : CSharpSyntaxRewriter
    {
        public override SyntaxNode? VisitInvocationExpression(InvocationExpressionSyntax node)
        {
            var visited = (InvocationExpressionSyntax)base.VisitInvocationExpression(node)!;
            if (visited.Expression is MemberAccessExpressionSyntax { Name.Identifier.Text: "Equals" } member && visited.ArgumentList.Arguments.Count == 1)
            {
                var call = SyntaxFactory.ParseExpression("global::R1SharpStructural.Equal((object)(a), (object)(b))") as InvocationExpressionSyntax;
                var args = SyntaxFactory.SeparatedList(new[]
                {
                    SyntaxFactory.Argument(SyntaxFactory.CastExpression(SyntaxFactory.ParseTypeName("object"), SyntaxFactory.ParenthesizedExpression(member.Expression.WithoutTrivia()))),
                    SyntaxFactory.Argument(SyntaxFactory.CastExpression(SyntaxFactory.ParseTypeName("object"), SyntaxFactory.ParenthesizedExpression(visited.ArgumentList.Arguments[0].Expression.WithoutTrivia()))),
                });
                return call!.WithArgumentList(SyntaxFactory.ArgumentList(args)).WithTriviaFrom(visited);
            }
            return visited;
        }
    }

    [GeneratedRegex(@"\b(public\s+|internal\s+|static\s+|sealed\s+|partial\s+)*class\s+Problem\b")]
    private static partial Regex ClassProblem();

    [GeneratedRegex(@"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")]
    private static partial Regex EntryName();
}
