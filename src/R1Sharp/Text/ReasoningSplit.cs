namespace R1Sharp.Text;

/// <summary>A completion split into its chain of thought and its answer.</summary>
public sealed record ReasoningAndAnswer(string? Reasoning, string Answer);

/// <summary>
/// DeepSeek-R1's convention: reasoning sits between &lt;think&gt; and &lt;/think&gt;, the answer follows. R1's chat
/// template opens the assistant turn with "&lt;think&gt;\n", so the completion itself often starts inside the
/// reasoning and contains only the closing tag. As in DeepSeek's API and vLLM's deepseek_r1 parser, a completion that
/// never closes its reasoning is all reasoning.
/// </summary>
public static class ReasoningSplit
{
    public const string Open = "<think>";
    public const string Close = "</think>";

    public static ReasoningAndAnswer Split(string completion, bool startsInsideThink)
    {
        string text = completion;
        if (!startsInsideThink)
        {
            int open = text.IndexOf(Open, StringComparison.Ordinal);
            if (open < 0 || text[..open].Trim().Length > 0) return new ReasoningAndAnswer(null, text);
            text = text[(open + Open.Length)..];
        }
        int close = text.IndexOf(Close, StringComparison.Ordinal);
        if (close < 0) return new ReasoningAndAnswer(text.Trim('\n'), "");
        return new ReasoningAndAnswer(text[..close].Trim('\n'), text[(close + Close.Length)..].TrimStart('\n'));
    }
}

/// <summary>
/// The streaming form of <see cref="ReasoningSplit"/>: feeds on text deltas and says which parts are reasoning and
/// which are answer, holding back a partial tag that a delta boundary cut in two. Used by `r1 chat` and the server
/// (delta.reasoning_content before delta.content).
/// </summary>
public sealed class ReasoningStream
{
    enum State { Start, Reasoning, Answer }
    State state;
    string pending = "";
    bool trimNewlines; // newlines right after <think> or </think> belong to neither part, even when split across deltas

    public ReasoningStream(bool startsInsideThink) => state = startsInsideThink ? State.Reasoning : State.Start;

    /// <summary>Returns (isReasoning, text) pieces in order.</summary>
    public IReadOnlyList<(bool IsReasoning, string Text)> Push(string delta)
    {
        var output = new List<(bool, string)>();
        pending += delta;
        while (pending.Length > 0)
        {
            if (trimNewlines)
            {
                pending = pending.TrimStart('\n');
                if (pending.Length == 0) break;
                trimNewlines = false;
            }
            if (state == State.Start)
            {
                string trimmed = pending.TrimStart();
                if (trimmed.Length == 0) return output;                       // only whitespace so far
                if (trimmed.StartsWith(ReasoningSplit.Open, StringComparison.Ordinal)) { pending = trimmed[ReasoningSplit.Open.Length..]; state = State.Reasoning; trimNewlines = true; continue; }
                if (ReasoningSplit.Open.StartsWith(trimmed, StringComparison.Ordinal)) return output; // a tag may be coming
                state = State.Answer;
            }
            if (state == State.Answer) { output.Add((false, pending)); pending = ""; break; }
            int close = pending.IndexOf(ReasoningSplit.Close, StringComparison.Ordinal);
            if (close >= 0)
            {
                if (close > 0) output.Add((true, pending[..close]));
                pending = pending[(close + ReasoningSplit.Close.Length)..];
                state = State.Answer;
                trimNewlines = true;
                continue;
            }
            int hold = PartialTagSuffix(pending, ReasoningSplit.Close);
            if (pending.Length > hold) output.Add((true, pending[..^hold]));
            pending = pending[^hold..];
            break;
        }
        return output;
    }

    /// <summary>Whatever is held back at the end of the stream.</summary>
    public IReadOnlyList<(bool IsReasoning, string Text)> Flush()
    {
        if (pending.Length == 0) return [];
        var r = new List<(bool, string)> { (state == State.Reasoning, pending) };
        pending = "";
        return r;
    }

    static int PartialTagSuffix(string s, string tag)
    {
        for (int k = Math.Min(tag.Length - 1, s.Length); k > 0; k--)
            if (string.CompareOrdinal(s, s.Length - k, tag, 0, k) == 0) return k;
        return 0;
    }
}
