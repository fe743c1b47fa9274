using R1Sharp.Verifier;

namespace R1Sharp.Tests.Verifier;

public class AnswerExtractorTests
{
    [Theory]
    [InlineData("so the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}")]
    [InlineData("\\boxed{1} then later \\boxed{\\{a, {b}\\}}", "\\{a, {b}\\}")]  // last box, nested braces
    [InlineData("\\fbox{42}", "42")]
    [InlineData("<think>maybe \\boxed{3}</think>The result is \\boxed{4}", "4")]   // reasoning ignored
    [InlineData("<think>\\boxed{3}</think> no answer here", null)]
    [InlineData("<answer>17</answer>", "17")]
    [InlineData("So the answer is (C).", "C")]                                              // multiple choice in prose
    [InlineData("She has 3 + 15 = <<3+15=18>>18 apples.\n#### 18", "18")]                 // GSM8K reference
    [InlineData("Final Answer: The final answer is $(0, 1)$. I hope it is correct.", "(0, 1)")]
    [InlineData("Final Answer: The largest $n$ is 34.", "34")]
    [InlineData("Natalia sold 48 clips in April and 24 in May, 72 in total.", "72")]   // last number
    [InlineData("so x is $\\frac{3}{4}$", "\\frac{3}{4}")]
    [InlineData("\\boxed{1} and \\boxed{2}", "1,2")]                                       // boxes joined by "and"
    [InlineData("\\boxed{1} no no no no no \\boxed{2}", "2")]
    [InlineData("AZYUK2A", "AZYUK2A")]                                                      // one token is taken whole, never as the number 2
    public void Extracts(string completion, string? expected) => Assert.Equal(expected, AnswerExtractor.Extract(completion));

    [Fact]
    public void NeverThrows() => Assert.Null(AnswerExtractor.Extract(null!));
}
