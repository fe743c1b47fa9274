using R1Sharp.Rewards;
using R1Sharp.Training;

namespace R1Sharp.Tests.Rewards;

/// <summary>Language consistency and the n-gram repetition penalty against values counted by hand.</summary>
public class ReadabilityRewardTests
{
    [Theory]
    // 3 Latin words (I, think, five) and 2 Han characters (这, 是): 3/5 English, 2/5 Chinese.
    [InlineData("<think>I think 这是 five</think><answer>5</answer>", "en", 0.6)]
    [InlineData("<think>I think 这是 five</think><answer>5</answer>", "zh", 0.4)]
    // Only the chain of thought counts: the English answer is outside it.
    [InlineData("<think>首先计算</think> The answer is five.", "zh", 1.0)]
    // Mathematics is not language: $x^2$ and \frac are removed, leaving 计 算 得 四.
    [InlineData("<think>计算 $x^2 + y$ 得 \\frac 四</think>", "zh", 1.0)]
    // The prompt opened the block: everything before </think> is the CoT (add, then, 二 → 2/3 English).
    [InlineData("add 2+2, then 二</think> 4", "en", 2.0 / 3)]
    // Japanese: kanji and kana are target words, one per character (答 え は で す); "OK" is not: 5 of 6.
    [InlineData("<think>答えは OK です</think>", "ja", 5.0 / 6)]
    // Cyrillic runs are words: "это" "ответ" in Russian, "yes" not (2/3).
    [InlineData("<think>это ответ yes</think>", "ru", 2.0 / 3)]
    // No words at all: nothing is inconsistent.
    [InlineData("<think>2+2=4</think>", "en", 1.0)]
    public void LanguageConsistency(string completion, string language, double expected) =>
        Assert.Equal(expected, LanguageConsistencyReward.Score(completion, language), 12);

    [Fact]
    public void LanguageConsistency_CountsScriptRunsAsWords()
    {
        // "mixed中文words": Latin "mixed", Han 中, Han 文, Latin "words" — 4 words, 2 Latin.
        Assert.Equal((2, 4), LanguageConsistencyReward.CountWords("mixed中文words", ["Latin"]));
        Assert.Equal((0, 0), LanguageConsistencyReward.CountWords("12 + 3 = 15 !", ["Latin"]));
    }

    [Theory]
    // n = 3 over "a b c a b c": trigrams abc bca cab abc → 4 in all, 3 distinct, rate 1/4.
    [InlineData("a b c a b c", 3, -1.0, -0.25)]
    // Lower-cased: "A a a a" → a a a a, bigrams aa aa aa: rate 1 − 1/3, times −0.5.
    [InlineData("A a a a", 2, -0.5, -1.0 / 3)]
    [InlineData("the cat sat on the mat", 3, -1.0, 0.0)]         // 4 distinct trigrams
    [InlineData("the cat", 3, -1.0, 0.0)]                         // fewer words than n
    [InlineData("", 3, -1.0, 0.0)]
    // "go go go go go" n=2: 4 bigrams, 1 distinct, rate 3/4.
    [InlineData("go go\ngo\tgo  go", 2, -1.0, -0.75)]
    public void RepetitionPenalty(string completion, int n, double maxPenalty, double expected) =>
        Assert.Equal(expected, RepetitionPenaltyReward.Penalty(completion, n, maxPenalty), 12);

    [Fact]
    public void Registry_BuildsThemByRecipeName_WithTheirOptions()
    {
        var cfg = RecipeLoader.Parse("""
            reward_funcs: [language_consistency, repetition_penalty]
            reward_weights: [0.1, 1.0]
            language_target: zh
            repetition_n_grams: 2
            repetition_max_penalty: -0.5
            """, "r.yaml");
        var list = RewardRegistry.Build(cfg);
        Assert.Equal(["language_consistency", "repetition_penalty"], list.Select(r => r.Name));
        Assert.Equal(0.1, list[0].Weight);
        Assert.Equal(0.4, list[0].Score("q", "<think>I think 这是 five</think>", "5"), 12);
        Assert.Equal(-1.0 / 3, list[1].Score("q", "A a a a", ""), 12); // rate 2/3 × −0.5
        cfg.RepetitionMaxPenalty = 1;
        Assert.Throws<R1SharpException>(() => RewardRegistry.Build(cfg));
        cfg.RepetitionMaxPenalty = -1; cfg.LanguageTarget = "xx";
        Assert.StartsWith("language \"xx\" is unknown", Assert.Throws<R1SharpException>(() => RewardRegistry.Build(cfg)).Message);
    }
}
