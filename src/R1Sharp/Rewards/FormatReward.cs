using System.Text.RegularExpressions;

namespace R1Sharp.Rewards;

/// <summary>
/// R1-Zero's format reward (DeepSeek-R1 §2.2.2): the completion must put its reasoning between &lt;think&gt; and
/// &lt;/think&gt; and then its answer between &lt;answer&gt; and &lt;/answer&gt;, and nothing else around them.
/// </summary>
public static partial class FormatReward
{
    public static RewardFunction Create(double weight = 1.0) =>
        new("format", (_, completion, _) => IsWellFormed(completion) ? 1.0 : 0.0, weight);

    public static bool IsWellFormed(string completion) => Pattern().IsMatch(completion);

    // One think block, then one answer block; neither may contain another opening tag.
    [GeneratedRegex(@"^\s*<think>((?!<think>|<answer>).)*?</think>\s*<answer>((?!<answer>|<think>).)*?</answer>\s*$", RegexOptions.Singleline)]
    private static partial Regex Pattern();
}
