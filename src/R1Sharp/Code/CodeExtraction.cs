using R1Sharp.Text;

namespace R1Sharp.Code;

/// <summary>A fenced block of a Markdown answer: its info string's first word ("python", "" when none) and its code.</summary>
public sealed record CodeBlock(string Tag, string Code);

/// <summary>
/// Finds the program in a model's answer: the part after the reasoning (after the last &lt;/think&gt;, when there is one),
/// then the last fenced code block of it (open-r1's and LiveCodeBench's rule: the model may sketch code earlier and
/// settle at the end); without a fenced block, R1-Zero's &lt;answer&gt; tag holds the code. A fence is a line starting
/// with three or more backticks; it closes at a line of at least as many
/// backticks and nothing else. An unclosed last fence runs to the end of the text (a completion cut by max tokens).
/// </summary>
public static class CodeExtraction
{
    /// <summary>The answer part of a completion: after the last &lt;/think&gt;, or all of it when there is none.</summary>
    public static string Answer(string completion)
    {
        int close = completion.LastIndexOf(ReasoningSplit.Close, StringComparison.Ordinal);
        return close < 0 ? completion : completion[(close + ReasoningSplit.Close.Length)..];
    }

    public static List<CodeBlock> Blocks(string text)
    {
        var blocks = new List<CodeBlock>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string open = lines[i].TrimStart();
            int ticks = open.TakeWhile(c => c == '`').Count();
            if (ticks < 3) continue;
            string info = open[ticks..].Trim();
            if (info.Contains('`')) continue; // inline code such as ```x``` on one line
            string tag = info.Split([' ', '\t', '{'], 2)[0].ToLowerInvariant();
            var body = new List<string>();
            int j = i + 1;
            for (; j < lines.Length; j++)
            {
                string t = lines[j].Trim();
                if (t.Length >= ticks && t.All(c => c == '`')) break;
                body.Add(lines[j]);
            }
            blocks.Add(new CodeBlock(tag, string.Join('\n', body) + (body.Count > 0 ? "\n" : "")));
            i = j;
        }
        return blocks;
    }

    /// <summary>The last fenced block of the answer part; failing that, the content of its last &lt;answer&gt; tag
    /// (R1-Zero's format, where the answer is the code itself); null when there is neither.</summary>
    public static CodeBlock? LastBlock(string completion)
    {
        string answer = Answer(completion);
        if (Blocks(answer) is { Count: > 0 } b) return b[^1];
        int open = answer.LastIndexOf("<answer>", StringComparison.Ordinal);
        int close = open < 0 ? -1 : answer.IndexOf("</answer>", open, StringComparison.Ordinal);
        if (close < 0) return null;
        string code = answer[(open + "<answer>".Length)..close].Trim();
        return code.Length == 0 ? null : new CodeBlock("", code + "\n");
    }

    /// <summary>code_format: the reasoning is closed (&lt;/think&gt; present when &lt;think&gt; opened it, or the
    /// completion started inside it) and the answer holds exactly one fenced block, tagged with the expected language.</summary>
    public static bool IsWellFormatted(string completion, CodeLanguage language, bool requireThink = true)
    {
        if (requireThink && !completion.Contains(ReasoningSplit.Close, StringComparison.Ordinal)) return false;
        var blocks = Blocks(Answer(completion));
        return blocks.Count == 1 && blocks[0].Tag.Length > 0 && language.Is(blocks[0].Tag) && blocks[0].Code.Trim().Length > 0;
    }
}
