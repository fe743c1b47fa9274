using R1Sharp.Generation;
using R1Sharp.Models;

namespace R1Sharp.Training;

/// <summary>One sampled completion: its token ids (end token included when it stopped on one), whether it hit the
/// length budget, the version of the weights that produced it, and where it was generated.</summary>
public sealed record RolloutSample(int[] TokenIds, bool Truncated, string WeightVersion, string Source);

/// <summary>
/// Where the trainer's completions come from. In one process that is the policy itself (<see cref="LocalRolloutSource"/>);
/// past one machine it is a fleet of inference servers (<see cref="EndpointRolloutSource"/>) that receive each update
/// as an HF checkpoint on shared storage.
/// </summary>
public interface IRolloutSource : IDisposable
{
    /// <summary>groupSize completions for each prompt, in prompt order (group g is rows g·G … g·G+G−1). Row i samples
    /// with options.Seed + i, so the samples are a function of the seed alone wherever they are generated.</summary>
    IReadOnlyList<RolloutSample> Generate(IReadOnlyList<int[]> prompts, int groupSize, SamplingOptions options, IReadOnlyCollection<int> eosIds);

    /// <summary>Hands the policy's current weights to the generator; called before the first rollout and after every
    /// update, with the trainer's step count.</summary>
    void PublishWeights(CausalLM policy, int step);

    /// <summary>The version the next rollouts are expected to carry.</summary>
    string WeightVersion { get; }

    /// <summary>The weight version a trainer at this step publishes: the label servers are given and report back.</summary>
    static string VersionFor(int step) => $"step-{step}";
}

/// <summary>Rollouts from the policy in this process: the optimizer and the sampler share the weights, so publishing is
/// only a change of label.</summary>
public sealed class LocalRolloutSource(CausalLM policy) : IRolloutSource
{
    readonly GenerationEngine engine = new(policy) { ReleaseMemoryAfterPrefill = false };
    public string WeightVersion { get; private set; } = IRolloutSource.VersionFor(0);

    public IReadOnlyList<RolloutSample> Generate(IReadOnlyList<int[]> prompts, int groupSize, SamplingOptions options, IReadOnlyCollection<int> eosIds)
    {
        var rows = prompts.SelectMany(p => Enumerable.Repeat<IReadOnlyList<int>>(p, groupSize)).ToArray();
        return engine.Generate(rows, options, eosIds)
            .Select(o => new RolloutSample(o.TokenIds, o.FinishReason == FinishReason.Length, WeightVersion, "local")).ToArray();
    }

    public void PublishWeights(CausalLM model, int step)
    {
        if (!ReferenceEquals(model, policy)) throw new ArgumentException("a local rollout source samples from the policy it was made with");
        WeightVersion = IRolloutSource.VersionFor(step);
    }

    public void Dispose() { }
}
