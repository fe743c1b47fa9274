using R1Sharp.Serving;

namespace R1Sharp.Tests.Serving;

/// <summary>The pure parts of the response: token accounting for reasoning and the reasoning/answer stream split.</summary>
public class ReasoningTokensTests
{
    // Token texts and their cumulative ends, as the decoding loop records them.
    static (string Text, int[] Ends) Tokens(params string[] pieces)
    {
        var ends = new int[pieces.Length];
        int n = 0;
        for (int i = 0; i < pieces.Length; i++) ends[i] = n += pieces[i].Length;
        return (string.Concat(pieces), ends);
    }

    [Fact]
    public void CountsTokensUpToTheClosingTag()
    {
        var (text, ends) = Tokens("<think>", "\n", "two", " plus two", "</think>", "\n\n", "Four", "."); // + nothing else
        Assert.Equal(5, ReasoningTokens.Count(text, ends, startsInsideThink: false));
    }

    [Fact]
    public void CountsTokensWhenThePromptOpenedTheBlock()
    {
        var (text, ends) = Tokens("two", " plus", "</", "think>", "Four");
        Assert.Equal(4, ReasoningTokens.Count(text, ends, startsInsideThink: true)); // a tag split over two tokens counts both
    }

    [Fact]
    public void AnUnclosedBlockIsAllReasoningButTheEndToken()
    {
        var (text, ends) = Tokens("<think>", "still", " going", "");  // the last one: an end token without text
        Assert.Equal(3, ReasoningTokens.Count(text, ends, startsInsideThink: false));
    }

    [Fact]
    public void NoBlockNoReasoning()
    {
        var (text, ends) = Tokens("Four", ".", " <think>late</think>");
        Assert.Equal(0, ReasoningTokens.Count(text, ends, startsInsideThink: false));
    }

    [Fact]
    public void ChoiceTextMergesPiecesAndKeepsReasoningFirst()
    {
        var c = new ChoiceText(splitReasoning: true, startsInsideThink: false);
        var pieces = new[] { "<thi", "nk>\nab", "c</th", "ink>\n\nDo", "ne" }.SelectMany(d => c.Push(d, final: false)).ToList();
        pieces.AddRange(c.Push("", final: true));
        Assert.Equal("abc", string.Concat(pieces.Where(p => p.IsReasoning).Select(p => p.Text)));
        Assert.Equal("Done", string.Concat(pieces.Where(p => !p.IsReasoning).Select(p => p.Text)));
        Assert.True(pieces.FindIndex(p => !p.IsReasoning) > pieces.FindLastIndex(p => p.IsReasoning));
        Assert.Equal("abc", c.Reasoning);
        Assert.Equal("Done", c.Content);
        var plain = new ChoiceText(splitReasoning: false, startsInsideThink: false);
        plain.Push("<think>x</think>y", final: true);
        Assert.Null(plain.Reasoning);
        Assert.Equal("<think>x</think>y", plain.Content); // /v1/completions returns text as generated
    }
}
