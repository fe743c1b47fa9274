using R1Sharp.Eval;
using R1Sharp.Verifier;

namespace R1Sharp.Tests.Eval;

/// <summary>pass@k and cons@k against values worked out by hand from their definitions.</summary>
public class PassAtKTests
{
    [Theory]
    // 1 − C(n−c, k)/C(n, k), by hand:
    [InlineData(4, 1, 1, 0.25)]            // 1 − 3/4
    [InlineData(4, 1, 2, 0.5)]             // 1 − C(3,2)/C(4,2) = 1 − 3/6
    [InlineData(5, 2, 2, 0.7)]             // 1 − C(3,2)/C(5,2) = 1 − 3/10
    [InlineData(10, 3, 5, 11.0 / 12)]      // 1 − C(7,5)/C(10,5) = 1 − 21/252
    [InlineData(4, 3, 2, 1.0)]             // only one wrong sample: any two hold a right one
    [InlineData(8, 0, 4, 0.0)]
    [InlineData(8, 8, 1, 1.0)]
    [InlineData(16, 4, 1, 0.25)]           // pass@1 is the fraction correct
    public void EstimatorMatchesTheBinomialDefinition(int n, int c, int k, double expected) =>
        Assert.Equal(expected, PassAtK.Estimate(n, c, k), 12);

    [Fact]
    public void EstimatorRejectsImpossibleCounts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(4, 1, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(4, 5, 1));
    }

    [Fact]
    public void CurveAveragesOverProblemsUpToTheFewestSamples()
    {
        // Problem A: 1 of 4 right → pass@1 .25, pass@2 .5, pass@3 .75, pass@4 1. Problem B: 0 of 3 → 0 everywhere.
        var curve = PassAtK.Curve([(4, 1), (3, 0)]);
        Assert.Equal(3, curve.Length);
        Assert.Equal(0.125, curve[0], 12);
        Assert.Equal(0.25, curve[1], 12);
        Assert.Equal(0.375, curve[2], 12);
    }

    [Fact]
    public void Pass1IsTheMeanOfPerProblemMeansWithTheirStandardError()
    {
        // Means .5, 1, 0: mean .5; sample variance (0 + .25 + .25)/2 = .25; SE = √(.25/3).
        var (mean, se) = PassAtK.Pass1([(2, 1), (2, 2), (2, 0)]);
        Assert.Equal(0.5, mean, 12);
        Assert.Equal(Math.Sqrt(0.25 / 3), se, 12);
        Assert.Equal((1.0, 0.0), PassAtK.Pass1([(4, 4)]));
    }

    static bool Same(string a, string b) => MathVerifier.Verify(a, b).Equal;

    [Fact]
    public void ConsensusGroupsAnswersByValueNotBySpelling()
    {
        // As raw strings "3" would win 2 to 1; by value one half has three votes.
        var vote = Consensus.Majority(["3", "1/2", "3", "0.5", "\\frac{1}{2}"], Same);
        Assert.Equal("1/2", vote.Answer);
        Assert.Equal(3, vote.Votes);
        Assert.Equal(1, vote.Winner);
        Assert.Equal(2, vote.Groups.Count);
    }

    [Fact]
    public void ConsensusTiesGoToTheEarliestAnswerAndMissingAnswersDoNotVote()
    {
        var vote = Consensus.Majority([null, "4", "", "3", "4", "3"], Same);
        Assert.Equal("4", vote.Answer);
        Assert.Equal(2, vote.Votes);
        Assert.Equal(1, vote.Winner);
        var none = Consensus.Majority([null, " "], Same);
        Assert.Null(none.Answer);
        Assert.Equal(-1, none.Winner);
    }
}
