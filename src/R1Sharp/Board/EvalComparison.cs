using System.Text.Json.Nodes;
using R1Sharp.Eval;

namespace R1Sharp.Board;

/// <summary>
/// Two evaluations side by side: their scores, and on the problems both graded, the ones that one solves and the
/// other does not. A problem counts as solved by its majority vote (cons@k's verdict, from problems.jsonl once the
/// eval has finished) or, while it runs, when more than half of its samples are correct. Per-problem pass@1 on the
/// shared problems gives the paired difference and its standard error (the same across-problems formula as pass@1's).
/// </summary>
public static class EvalComparison
{
    public static JsonObject Compare(BoardRun a, BoardRun b)
    {
        var ea = a.EvalRun ?? throw new BoardRequestException($"run {a.Id} is not an evaluation (no samples.jsonl)");
        var eb = b.EvalRun ?? throw new BoardRequestException($"run {b.Id} is not an evaluation (no samples.jsonl)");
        var ja = ea.ToJson();
        var jb = eb.ToJson();
        var oa = ea.Outcomes();
        var ob = eb.Outcomes();
        var rows = ja["problem_rows"]!.AsArray().Concat(jb["problem_rows"]!.AsArray())
            .GroupBy(r => (string)r!["id"]!).ToDictionary(g => g.Key, g => g.First()!);
        var shared = oa.Keys.Where(ob.ContainsKey).OrderBy(k => k, NaturalOrder.Instance).ToList();
        static bool Solved((int N, int C, bool? Consensus) o) => o.Consensus ?? o.C * 2 > o.N;
        JsonObject Row(string id) => new()
        {
            ["id"] = id, ["subject"] = rows[id]["subject"]?.DeepClone(), ["level"] = rows[id]["level"]?.DeepClone(), ["gold"] = rows[id]["gold"]?.DeepClone(),
            ["a_correct"] = oa[id].C, ["a_samples"] = oa[id].N, ["b_correct"] = ob[id].C, ["b_samples"] = ob[id].N,
        };
        var onlyA = shared.Where(id => Solved(oa[id]) && !Solved(ob[id])).Select(id => (JsonNode?)Row(id)).ToArray();
        var onlyB = shared.Where(id => !Solved(oa[id]) && Solved(ob[id])).Select(id => (JsonNode?)Row(id)).ToArray();
        // Paired: the per-problem difference of pass@1, its mean and standard error across problems.
        var diffs = shared.Select(id => (double)oa[id].C / oa[id].N - (double)ob[id].C / ob[id].N).ToArray();
        double mean = diffs.Length == 0 ? 0 : diffs.Average();
        double se = diffs.Length < 2 ? 0 : Math.Sqrt(diffs.Sum(d => (d - mean) * (d - mean)) / (diffs.Length - 1) / diffs.Length);
        return new JsonObject
        {
            ["a"] = Side(a, ja), ["b"] = Side(b, jb),
            ["shared_problems"] = shared.Count,
            ["only_a"] = new JsonArray(onlyA), ["only_b"] = new JsonArray(onlyB),
            ["both_solve"] = shared.Count(id => Solved(oa[id]) && Solved(ob[id])),
            ["neither_solves"] = shared.Count(id => !Solved(oa[id]) && !Solved(ob[id])),
            ["pass1_difference"] = mean, ["pass1_difference_std_err"] = se,
            ["shared_pass1"] = new JsonObject
            {
                ["a"] = PassAtK.Pass1(shared.Select(id => (oa[id].N, oa[id].C)).ToList()).Mean,
                ["b"] = PassAtK.Pass1(shared.Select(id => (ob[id].N, ob[id].C)).ToList()).Mean,
            },
        };
    }

    static JsonObject Side(BoardRun run, JsonObject eval)
    {
        var o = new JsonObject { ["id"] = run.Id };
        foreach (var key in new[] { "bench", "model", "live", "k", "problems", "samples", "pass1", "pass1_std_err", "pass_at_k", "cons_at_k", "by_subject", "by_level" })
            o[key] = eval[key]?.DeepClone();
        return o;
    }
}
