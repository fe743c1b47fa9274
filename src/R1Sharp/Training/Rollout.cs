using R1Sharp.Rewards;

namespace R1Sharp.Training;

/// <summary>A generation batch: G completions for each of its prompts (group g is rows g·G … g·G+G−1), scored.</summary>
public sealed class Rollout
{
    public List<int[]> PromptIds { get; } = new();
    public List<int[]> CompletionIds { get; } = new();
    public List<string> Prompts { get; } = new();
    public List<string> Completions { get; } = new();
    public List<string> References { get; } = new();
    public List<bool> Truncated { get; } = new();
    /// <summary>The weight version that produced each completion, and the server (or "local") that generated it.</summary>
    public List<string> WeightVersions { get; } = new();
    public List<string> Sources { get; } = new();
    public Dictionary<string, List<double>> PerFunction { get; } = new();
    public List<double> Rewards { get; } = new();
    public int Count => Rewards.Count;

    /// <summary>Appends group g of another rollout (its G rows).</summary>
    public void AddGroup(Rollout from, int group, int groupSize)
    {
        for (int i = group * groupSize; i < (group + 1) * groupSize; i++)
        {
            PromptIds.Add(from.PromptIds[i]); CompletionIds.Add(from.CompletionIds[i]);
            Prompts.Add(from.Prompts[i]); Completions.Add(from.Completions[i]); References.Add(from.References[i]);
            Truncated.Add(from.Truncated[i]); Rewards.Add(from.Rewards[i]);
            WeightVersions.Add(from.WeightVersions[i]); Sources.Add(from.Sources[i]);
            foreach (var (name, scores) in from.PerFunction)
            {
                if (!PerFunction.TryGetValue(name, out var list)) PerFunction[name] = list = new List<double>();
                list.Add(scores[i]);
            }
        }
    }

    public void SetScores(RewardScores scores)
    {
        Rewards.AddRange(scores.Total);
        foreach (var (name, s) in scores.PerFunction) PerFunction[name] = s.ToList();
    }
}
