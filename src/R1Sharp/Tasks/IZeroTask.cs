namespace R1Sharp.Tasks;

/// <summary>A synthetic task of `r1 zero`: problems split into training and held-out sides, the base corpus's
/// completions (with or without the reasoning steps), and how a held-out answer is graded.</summary>
public interface IZeroTask
{
    List<Problem> Sample(int count, int seed, bool heldOut);

    /// <summary>A completion in the R1-Zero format; the reasoning is the steps or nothing. Without steps the answer is
    /// exact, or with <paramref name="estimate"/> what someone who does not work it out writes (a round figure).</summary>
    string Completion(Problem p, bool showSteps, bool estimate);

    string Completion(Problem p, bool showSteps) => Completion(p, showSteps, estimate: false);

    /// <summary>Whether an extracted answer is right for a reference (the accuracy reward's comparison and held-out
    /// grading); null: the math verifier.</summary>
    Func<string, string, bool>? Equal { get; }

    /// <summary>The rewards of the GRPO phase (reward_funcs) and their weights.</summary>
    (List<string> Funcs, List<double> Weights) Rewards { get; }

    /// <summary>Whether a completion took the step-showing way the base corpus taught (column steps; code).</summary>
    bool ShowsSteps(string completion);

    /// <summary>One line for the report: what the task is.</summary>
    string Describe(double stepsFraction);
}
