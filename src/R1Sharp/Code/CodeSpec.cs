namespace R1Sharp.Code;

/// <summary>One stdin/stdout test: what the program reads and what it must print.</summary>
public sealed record TestCase(string Input, string Output);

/// <summary>How a problem's tests run.</summary>
public enum CodeTestStyle
{
    /// <summary>human-eval: the program is prompt + completion, then the test code and check(entry_point).</summary>
    HumanEval,
    /// <summary>MultiPL-E: prompt + completion, then a Main of Debug.Assert calls (C# here).</summary>
    MultiplE,
    /// <summary>LiveCodeBench / APPS / CodeContests: a whole program, run once per test case on its stdin.</summary>
    Stdio,
}

/// <summary>
/// A code problem's tests and how a completion becomes a program. A base model continues <see cref="Prompt"/> (cut
/// at <see cref="StopTokens"/>); a chat model's answer gives its last fenced code block, which is taken as the whole
/// function (or program) when it defines the entry point and as the body that continues the prompt when it does not.
/// </summary>
public sealed record CodeSpec
{
    public required CodeTestStyle Style { get; init; }
    /// <summary>The language's canonical name (python, csharp or a command-line language).</summary>
    public required string Language { get; init; }
    /// <summary>The code a base model continues: HumanEval's signature and docstring. Empty for stdio problems.</summary>
    public string Prompt { get; init; } = "";
    /// <summary>Fixed test code run after the solution (Python) or compiled with it (C#).</summary>
    public string? Harness { get; init; }
    public string? EntryPoint { get; init; }
    public IReadOnlyList<TestCase> Cases { get; init; } = [];
    public IReadOnlyList<string> StopTokens { get; init; } = [];

    /// <summary>Codex's stop sequences for HumanEval (Chen et al. 2021, §2.3): a new top-level statement ends the function.</summary>
    public static readonly string[] HumanEvalStops = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

    /// <summary>Test cases a pass rate is a share of: the stdio cases, or the harness as one.</summary>
    public int TestCount => Style == CodeTestStyle.Stdio ? Cases.Count : 1;

    /// <summary>A base model's completion cut at the first stop token, as the sampler would have cut it.</summary>
    public string CutAtStop(string completion)
    {
        int cut = completion.Length;
        foreach (var s in StopTokens)
        {
            int at = completion.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && at < cut) cut = at;
        }
        return completion[..cut];
    }

    /// <summary>The solution's source for a completion, and the language it is in; null when a chat answer holds no
    /// code block. Base-model completions continue the prompt as given (human-eval does not cut them again).</summary>
    public (string Source, string Language)? Solution(string completion, bool chat, Func<string, bool>? supports = null)
    {
        if (!chat)
            return Style switch
            {
                CodeTestStyle.MultiplE => (MultiplE.Solution(Prompt, completion), Language),
                CodeTestStyle.Stdio => (completion, Language),
                _ => (Prompt + completion, Language),
            };
        if (CodeExtraction.LastBlock(completion) is not { } block) return null;
        string code = block.Code;
        switch (Style)
        {
            case CodeTestStyle.HumanEval:
                // The whole function: keep the prompt's imports (typing's List, math…) in front of it.
                return (EntryPoint is { } e && Defines(code, e) ? Imports(Prompt) + code : Prompt + code, Language);
            case CodeTestStyle.MultiplE:
                return (MultiplE.ChatSolution(Prompt, code, EntryPoint), Language);
            default:
                // A stdio program may come in any language the executor runs, as its fence says.
                string lang = block.Tag.Length > 0 && (supports?.Invoke(block.Tag) ?? false) ? block.Tag : Language;
                return (code, lang);
        }
    }

    static bool Defines(string code, string entry) =>
        System.Text.RegularExpressions.Regex.IsMatch(code, @"(^|\n)\s*(async\s+)?def\s+" + System.Text.RegularExpressions.Regex.Escape(entry) + @"\s*\(");

    /// <summary>The import lines of a Python prompt (before its first def).</summary>
    static string Imports(string prompt)
    {
        var lines = prompt.Split('\n').TakeWhile(l => !l.TrimStart().StartsWith("def ", StringComparison.Ordinal))
            .Where(l => l.StartsWith("import ", StringComparison.Ordinal) || l.StartsWith("from ", StringComparison.Ordinal));
        return string.Concat(lines.Select(l => l + "\n"));
    }
}
