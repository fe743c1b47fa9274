using R1Sharp.Generation;
using R1Sharp.Text;

namespace R1Sharp.Tests.Generation;

public class TextUtilitiesTests
{
    [Theory]
    [InlineData("<think>\nstep 1\n</think>\n\nThe answer is 4.", false, "step 1", "The answer is 4.")]
    [InlineData("step 1\n</think>\n\n42", true, "step 1", "42")]
    [InlineData("still thinking", true, "still thinking", "")]
    [InlineData("just an answer", false, null, "just an answer")]
    [InlineData("  <think>a</think>b", false, "a", "b")]
    public void SplitsReasoningFromAnswer(string text, bool insideThink, string? reasoning, string answer)
    {
        var r = ReasoningSplit.Split(text, insideThink);
        Assert.Equal(reasoning, r.Reasoning);
        Assert.Equal(answer, r.Answer);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReasoningStreamAgreesWithSplitWhateverTheDeltaBoundaries(bool insideThink)
    {
        string text = insideThink ? "let me see </thi\nnk> no\n</think>\n\nanswer </think> 7" : "<think>\nwe need x</think>\n\nx = 7";
        var whole = ReasoningSplit.Split(text, insideThink);
        for (int chunk = 1; chunk <= 5; chunk++)
        {
            var stream = new ReasoningStream(insideThink);
            var reasoning = new System.Text.StringBuilder();
            var answer = new System.Text.StringBuilder();
            for (int i = 0; i < text.Length; i += chunk)
                foreach (var (isR, t) in stream.Push(text.Substring(i, Math.Min(chunk, text.Length - i))))
                    (isR ? reasoning : answer).Append(t);
            foreach (var (isR, t) in stream.Flush()) (isR ? reasoning : answer).Append(t);
            Assert.Equal(whole.Reasoning, reasoning.ToString().Trim('\n'));
            Assert.Equal(whole.Answer, answer.ToString());
        }
    }

    [Fact]
    public void StopStringsCutTheTextAndNothingPastThemIsStreamed()
    {
        var m = new StopStringMatcher(["STOP", "\n\n"]);
        var streamed = new System.Text.StringBuilder();
        foreach (var d in new[] { "ab", "cS", "TO", "P more" })
        {
            streamed.Append(m.Push(d));
            if (m.Stopped) break;
        }
        Assert.True(m.Stopped);
        Assert.Equal("abc", m.Text);
        Assert.Equal("abc", streamed.ToString());
    }

    [Fact]
    public void TextWithoutStopIsReleasedInFull()
    {
        var m = new StopStringMatcher(["</answer>"]);
        string s = m.Push("x </ans") + m.Push("wer is");
        s += m.Flush();
        Assert.False(m.Stopped);
        Assert.Equal("x </answer is", s);
    }
}
