using R1Sharp.Verifier;

namespace R1Sharp.Tests.Verifier;

/// <summary>One case per feature the issue lists, so a regression names the feature that broke.</summary>
public class VerifierFeatureTests
{
    [Theory]
    [InlineData("10080", "10,\\!080")]                       // thousands separators
    [InlineData("11111111100", "11,\\! 111,\\! 111,\\! 100")]
    [InlineData("7", "007")]                                 // leading zeros
    [InlineData("54", "204_5")]                              // base subscript
    [InlineData("0.5", "\\frac12")]                          // decimals vs fractions
    [InlineData("\\frac{3}{4}", "\\dfrac{3}{4}")]
    [InlineData("\\frac{3}{4}", "\\tfrac34")]
    [InlineData("3/4", "\\frac{6}{8}")]
    [InlineData("1\\frac{4}{5}", "\\frac{9}{5}")]            // mixed number
    [InlineData("2\\sqrt{2}", "\\sqrt{8}")]                  // square roots
    [InlineData("\\sqrt[3]{27}", "3")]
    [InlineData("2\\pi", "\\pi + \\pi")]
    [InlineData("e^2", "e \\cdot e")]
    [InlineData("x^2+2x+1", "(x+1)^2")]                      // free variables, evaluated at points
    [InlineData("2xy", "2 \\times x \\times y")]              // implicit multiplication
    [InlineData("6-5i", "6 - 5i")]                          // complex numbers
    [InlineData("(1+i)^2", "2i")]
    [InlineData("28\\%", "28")]                              // percent dropped
    [InlineData("90^\\circ", "90")]                          // degrees dropped
    [InlineData("5.4 \\text{ cents}", "5.4")]                // units
    [InlineData("864 \\mbox{ inches}^2", "864")]
    [InlineData("\\text{Evelyn}", "Evelyn")]                 // words
    [InlineData("\\text{east}", "\\boxed{\\text{East}}")]  // words ignore case
    [InlineData("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)")]
    [InlineData("\\$18.90", "18.9")]                         // dollars
    [InlineData("(0,9) \\cup (9,36)", "(0, 9)\\cup(9, 36)")] // intervals and unions
    [InlineData("-2 \\le x \\le 7", "[-2, 7]")]
    [InlineData("\\{1,2,3\\}", "\\{3,2,1\\}")]               // sets
    [InlineData("1,-2", "-2, 1")]
    [InlineData("(6,31,-1)", "(6, 31, -1)")]                 // tuples
    [InlineData("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}")] // ±
    [InlineData("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}")]
    [InlineData("x=5", "5")]                                 // equations
    [InlineData("5", "x = 5")]
    [InlineData("y = 2x + 3", "2x - y + 3 = 0")]
    [InlineData("x \\ge 5", "5 \\le x")]                     // inequalities
    [InlineData("\\text{(C)}", "C")]                         // multiple choice
    [InlineData("\\sin^2 x + \\cos^2 x", "1")]
    public void Equal(string gold, string pred) => Assert.True(MathVerifier.Verify(gold, pred).Equal, MathVerifier.Verify(gold, pred).Reason);

    [Theory]
    [InlineData("10080", "10,\\!081")]
    [InlineData("(0,1)", "[0,1)")]                           // interval ends matter
    [InlineData("(3,1)", "\\{1,3\\}")]
    [InlineData("-2,1", "(-2,1)")]                           // roots are not a point
    [InlineData("x+1", "y+1")]
    [InlineData("\\pm 2", "2")]
    [InlineData("2x+z=1", "1")]                              // not "label = value"
    [InlineData("x > 5", "x < 5")]
    [InlineData("\\frac{1}{3}", "0.33")]                     // 6-place rounding by default
    [InlineData("\\text{A}", "\\text{B}")]
    [InlineData("10^{10^{10}}", "10^{10^{10}}+1")]           // too large to decide: false, not a guess
    [InlineData("1", "")]
    public void NotEqual(string gold, string pred) => Assert.False(MathVerifier.Verify(gold, pred).Equal, MathVerifier.Verify(gold, pred).Reason);

    [Fact]
    public void FloatRoundingOptionIsHonoured()
    {
        Assert.True(MathVerifier.Verify("\\frac{1}{3}", "0.33", new VerifyOptions { FloatRounding = 2 }).Equal);
        Assert.False(MathVerifier.Verify("\\frac{1}{3}", "0.33", new VerifyOptions { FloatRounding = 3 }).Equal);
    }

    [Fact]
    public void StrictOptionIsHonoured()
    {
        Assert.False(MathVerifier.Verify("f(x)", "f(y)").Equal);
        Assert.True(MathVerifier.Verify("f(x)", "f(y)", new VerifyOptions { Strict = false }).Equal);
    }

    [Fact]
    public void SetRelationOptionIsHonoured()
    {
        Assert.False(MathVerifier.Verify("x \\in [-2,7]", "-2 \\le x \\le 7").Equal);
        Assert.True(MathVerifier.Verify("x \\in [-2,7]", "-2 \\le x \\le 7", new VerifyOptions { AllowSetRelationComparison = true }).Equal);
    }

    [Fact]
    public void NeverThrowsOnNull() => Assert.False(MathVerifier.Verify(null!, null!).Equal);

    [Theory]
    [InlineData(200, "200", true)]
    [InlineData(200, "1", false)]      // the last number of the expression is not its value
    [InlineData(200, "199", false)]
    [InlineData(1000, "1000", true)]
    public void ALongPlainExpressionIsComparedAsAnExpression(int terms, string pred, bool equal)
    {
        string sum = string.Join("+", Enumerable.Repeat("1", terms)); // 399 characters for 200 terms
        // What is compared, not how fast: the default 50 ms wall-clock budget can run out on a loaded machine and turn
        // a true verdict into "gave up" (the budget has its own tests).
        var generous = new VerifyOptions { Budget = TimeSpan.FromSeconds(30) };
        Assert.Equal(equal, MathVerifier.Verify(sum, pred, generous).Equal);
        Assert.Equal(equal, MathVerifier.Verify(pred, sum, generous).Equal);
        if (terms <= 200) Assert.Equal(equal, MathVerifier.Verify(sum.Replace("+", " + "), pred, generous).Equal); // spaced, 999 characters
    }

    [Fact]
    public void LongProseStillFallsBackToItsLastNumber()
    {
        string prose = string.Concat(Enumerable.Repeat("We carry the one and add the next column of digits carefully. ", 8)) + "So there are 42 apples.";
        Assert.True(prose.Length > 300);
        Assert.True(MathVerifier.Verify("42", prose).Equal, MathVerifier.Verify("42", prose).Reason);
    }

    [Theory]
    [InlineData("\uFFFD", "\uFFFD")]
    [InlineData("\uFFFD\uFFFD", "\uFFFD\uFFFD")]
    [InlineData("12\uFFFD", "12\uFFFD")]
    public void TextThatWasNotUtf8IsNeverJudgedIdentical(string gold, string pred)
    {
        // Invalid UTF-8 (two different byte strings alike) decodes to U+FFFD: what it stood for is unknown.
        gold = System.Text.RegularExpressions.Regex.Unescape(gold); pred = System.Text.RegularExpressions.Regex.Unescape(pred);
        var v = MathVerifier.Verify(gold, pred);
        Assert.False(v.Equal, v.Reason);
        Assert.Contains("UTF-8", v.Reason);
    }
}
