namespace R1Sharp.Eval;

/// <summary>The result of a majority vote: the winning answer (null when no sample gave one), how many samples
/// voted for it, and the groups as indices into the answers.</summary>
public sealed record Vote(string? Answer, int Votes, IReadOnlyList<IReadOnlyList<int>> Groups)
{
    /// <summary>Index of the first sample in the winning group, or −1.</summary>
    public int Winner => Votes == 0 ? -1 : Groups.First(g => g.Count == Votes)[0];
}

/// <summary>cons@k (DeepSeek-R1 report, "majority voting"): the answers of k samples are grouped by mathematical
/// equality (the verifier, so "1/2", "0.5" and "\frac12" are one vote) rather than by raw strings, and the largest
/// group's answer is graded. Pure: equality is passed in.</summary>
public static class Consensus
{
    /// <param name="answers">extracted answers per sample; null (no answer found) does not vote</param>
    /// <param name="same">whether two answers are equal; compared against each group's first answer</param>
    /// <remarks>Ties go to the group whose first answer came earliest (sample order), so the vote is deterministic.
    /// Grouping compares with a group's first member only, which keeps it O(k · groups) and order-stable even if the
    /// equality is not perfectly transitive.</remarks>
    public static Vote Majority(IReadOnlyList<string?> answers, Func<string, string, bool> same)
    {
        var groups = new List<List<int>>();
        for (int i = 0; i < answers.Count; i++)
        {
            if (answers[i] is not { } a || string.IsNullOrWhiteSpace(a)) continue;
            var home = groups.FirstOrDefault(g => a == answers[g[0]] || same(answers[g[0]]!, a));
            if (home is null) groups.Add([i]); else home.Add(i);
        }
        if (groups.Count == 0) return new Vote(null, 0, []);
        var best = groups[0];
        foreach (var g in groups) if (g.Count > best.Count) best = g; // strictly larger: earlier group wins ties
        return new Vote(answers[best[0]], best.Count, groups);
    }
}
