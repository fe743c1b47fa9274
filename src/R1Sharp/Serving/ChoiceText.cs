using System.Text;
using R1Sharp.Text;

namespace R1Sharp.Serving;

/// <summary>
/// One choice's text as the client sees it. For chat, the stream is split at &lt;think&gt;…&lt;/think&gt; into
/// reasoning and answer pieces as they arrive (DeepSeek's API sends delta.reasoning_content before delta.content);
/// for plain completions the text passes through whole.
/// </summary>
public sealed class ChoiceText
{
    readonly ReasoningStream? split;
    readonly StringBuilder reasoning = new(), content = new();
    bool sawReasoning;

    public ChoiceText(bool splitReasoning, bool startsInsideThink) =>
        split = splitReasoning ? new ReasoningStream(startsInsideThink) : null;

    public string? FinishReason { get; set; }
    public string? Error { get; set; }
    public string WeightVersion { get; set; } = "0";
    /// <summary>Null when the completion had no reasoning block (DeepSeek's API returns null then).</summary>
    public string? Reasoning => sawReasoning ? reasoning.ToString().Trim('\n') : null;
    public string Content => content.ToString();

    /// <summary>Adds released text; returns the pieces to stream, consecutive pieces of one kind merged.</summary>
    public IReadOnlyList<(bool IsReasoning, string Text)> Push(string delta, bool final)
    {
        var pieces = new List<(bool, string)>();
        if (split is null)
        {
            if (delta.Length > 0) pieces.Add((false, delta));
        }
        else
        {
            pieces.AddRange(split.Push(delta));
            if (final) pieces.AddRange(split.Flush());
        }
        var merged = new List<(bool IsReasoning, string Text)>();
        foreach (var (isReasoning, text) in pieces)
        {
            if (text.Length == 0) continue;
            (isReasoning ? reasoning : content).Append(text);
            sawReasoning |= isReasoning;
            if (merged.Count > 0 && merged[^1].IsReasoning == isReasoning) merged[^1] = (isReasoning, merged[^1].Text + text);
            else merged.Add((isReasoning, text));
        }
        return merged;
    }
}

/// <summary>completion_tokens_details.reasoning_tokens: the tokens whose text lies in the reasoning block, i.e. starts
/// before the end of &lt;/think&gt; (all tokens with text when the block never closes).</summary>
public static class ReasoningTokens
{
    public static int Count(string text, IReadOnlyList<int> textEnds, bool startsInsideThink)
    {
        int from = 0;
        if (!startsInsideThink)
        {
            int open = text.IndexOf(ReasoningSplit.Open, StringComparison.Ordinal);
            if (open < 0 || text[..open].Trim().Length > 0) return 0;
            from = open + ReasoningSplit.Open.Length;
        }
        int close = text.IndexOf(ReasoningSplit.Close, from, StringComparison.Ordinal);
        int end = close < 0 ? text.Length : close + ReasoningSplit.Close.Length;
        int count = 0, start = 0;
        foreach (int e in textEnds)
        {
            if (start < end) count++;
            start = e;
        }
        return count;
    }
}
