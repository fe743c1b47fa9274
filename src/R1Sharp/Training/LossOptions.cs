namespace R1Sharp.Training;

/// <summary>How a policy-gradient loss normalises over tokens (TRL's loss_type): see <see cref="PolicyLoss.Aggregate"/>.</summary>
public enum LossType { Grpo, Bnpo, Dapo, DrGrpo }

/// <summary>What a group's rewards are divided by (TRL's scale_rewards): see <see cref="Advantages"/>.</summary>
public enum ScaleRewards { Group, Batch, None }

/// <summary>Where the importance ratio is taken (TRL's importance_sampling_level): per token, or per sequence (GSPO).</summary>
public enum ImportanceSamplingLevel { Token, Sequence }

/// <summary>
/// The GRPO objective's options in one record, parsed once from a recipe's strings (TRL's option names and values)
/// when the recipe is validated, so an unknown value is an error before any training and the loss code switches on
/// enums rather than strings.
/// </summary>
public sealed record LossOptions(
    LossType Type,
    ScaleRewards ScaleRewards,
    ImportanceSamplingLevel ImportanceSampling,
    double Epsilon,
    double EpsilonHigh,
    double Beta,
    int MaxCompletionLength,
    bool MaskTruncatedCompletions)
{
    public bool SequenceLevel => ImportanceSampling == ImportanceSamplingLevel.Sequence;

    public static LossOptions From(GrpoConfig c) => new(ParseLossType(c.LossType), ParseScaleRewards(c.ScaleRewards),
        ParseImportanceSampling(c.ImportanceSamplingLevel), c.Epsilon, c.EffectiveEpsilonHigh, c.Beta, c.MaxCompletionLength, c.MaskTruncatedCompletions);

    public static LossType ParseLossType(string s) => s switch
    {
        "grpo" => LossType.Grpo, "bnpo" => LossType.Bnpo, "dapo" => LossType.Dapo, "dr_grpo" => LossType.DrGrpo,
        _ => throw new R1SharpException($"loss_type \"{s}\" is unknown (expected grpo, bnpo, dapo or dr_grpo)"),
    };

    public static ScaleRewards ParseScaleRewards(string s) => s switch
    {
        "group" => Training.ScaleRewards.Group, "batch" => Training.ScaleRewards.Batch, "none" => Training.ScaleRewards.None,
        _ => throw new R1SharpException($"scale_rewards \"{s}\" is unknown (expected group, batch or none)"),
    };

    public static ImportanceSamplingLevel ParseImportanceSampling(string s) => s switch
    {
        "token" => ImportanceSamplingLevel.Token, "sequence" => ImportanceSamplingLevel.Sequence,
        _ => throw new R1SharpException($"importance_sampling_level \"{s}\" is unknown (expected token or sequence)"),
    };
}
