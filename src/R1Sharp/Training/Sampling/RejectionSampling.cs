using R1Sharp.Code;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Eval;
using R1Sharp.Rewards;

namespace R1Sharp.Training.Sampling;

/// <summary>Acceptance counts of one group (a source model, a subject).</summary>
public sealed record AcceptanceCount(int Samples, int Correct, int Accepted, int Kept)
{
    public double AcceptanceRate => Samples == 0 ? 0 : (double)Accepted / Samples;
}

/// <summary>What a rejection-sampling run produced.</summary>
public sealed record SamplingSummary(string Source, int Prompts, int K, int Samples, int Accepted, int Kept, int PromptsWithKept,
    IReadOnlyDictionary<string, int> Verdicts, IReadOnlyDictionary<string, AcceptanceCount> BySource, IReadOnlyDictionary<string, AcceptanceCount> BySubject)
{
    public double AcceptanceRate => Samples == 0 ? 0 : (double)Accepted / Samples;
}

/// <summary>
/// Rejection sampling into an SFT dataset (DeepSeek-R1 §2.3.3; the data of the R1-Distill models): the k graded
/// samples per prompt (from <see cref="EvalRunner"/>, whose append-only results log makes sampling resumable and never
/// pays for a sample twice) are judged by the <see cref="ReadabilityFilter"/>; of the accepted, at most
/// <c>keepPerPrompt</c> are kept, shortest first (ties by sample index). Each kept sample becomes a `messages` row —
/// the user turn as it was sent, the reply as "&lt;think&gt;\n…\n&lt;/think&gt;\n\nanswer" — with its provenance.
/// </summary>
public static class RejectionSampling
{
    public const string DatasetFile = "sft.jsonl", SummaryFile = "summary.json", SamplesFile = "samples.jsonl";

    /// <summary>`r1 sample` as a function: k samples per problem from the backend, appended to outDir/samples.jsonl as
    /// they arrive (a rerun on the same folder pays only for the missing ones), judged, and written as outDir/sft.jsonl
    /// and summary.json. `r1 distill` and the pipeline's sample stage run exactly this.</summary>
    public static async Task<SamplingSummary> RunAsync(IReadOnlyList<BenchProblem> problems, int k, EvalSettings settings, IEvalBackend backend,
        ReadabilityFilter filter, int keepPerPrompt, string outDir, Action<EvalProgress>? progress = null, CancellationToken cancel = default,
        ICodeExecutor? code = null)
    {
        LanguageConsistencyReward.Create(filter.Language); // an unknown language fails before any sampling
        settings.Sampling().Validate();
        Directory.CreateDirectory(outDir);
        IReadOnlyList<SampleRecord> records;
        using (var log = new ResultsLog(Path.Combine(outDir, SamplesFile)))
            records = await EvalRunner.RunAsync(problems, k, settings, backend, log, progress, cancel, code);
        var (rows, summary) = Select(problems, k, settings, records, filter, keepPerPrompt);
        Write(outDir, rows, summary);
        return summary;
    }

    public static (List<JsonObject> Rows, SamplingSummary Summary) Select(IReadOnlyList<BenchProblem> problems, int k, EvalSettings settings,
        IReadOnlyList<SampleRecord> records, ReadabilityFilter filter, int keepPerPrompt = 0)
    {
        var byProblem = records.GroupBy(r => r.ProblemId).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Sample).ToList());
        var rows = new List<JsonObject>();
        var verdicts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var bySubject = new SortedDictionary<string, int[]>(StringComparer.Ordinal);
        int samples = 0, accepted = 0, correct = 0, promptsWithKept = 0;
        foreach (var p in problems)
        {
            var judged = (byProblem.GetValueOrDefault(p.Id) ?? []).Select(r => (Record: r, Verdict: filter.Judge(r))).ToList();
            var keep = judged.Where(j => j.Verdict == "accepted").OrderBy(j => j.Record.CompletionTokens).ThenBy(j => j.Record.Sample)
                .Take(keepPerPrompt > 0 ? keepPerPrompt : int.MaxValue).ToList();
            string subject = p.Subject ?? "(none)";
            if (!bySubject.TryGetValue(subject, out var counts)) bySubject[subject] = counts = new int[4];
            foreach (var (r, v) in judged)
            {
                verdicts[v] = verdicts.GetValueOrDefault(v) + 1;
                samples++; counts[0]++;
                if (r.Correct) { correct++; counts[1]++; }
                if (v == "accepted") { accepted++; counts[2]++; }
            }
            counts[3] += keep.Count;
            if (keep.Count > 0) promptsWithKept++;
            foreach (var (r, _) in keep.OrderBy(j => j.Record.Sample)) rows.Add(Row(p, r, settings, filter));
        }
        static AcceptanceCount Count(int[] c) => new(c[0], c[1], c[2], c[3]);
        var summary = new SamplingSummary(settings.Model, problems.Count, k, samples, accepted, rows.Count, promptsWithKept, verdicts,
            new Dictionary<string, AcceptanceCount> { [settings.Model] = new(samples, correct, accepted, rows.Count) },
            bySubject.ToDictionary(kv => kv.Key, kv => Count(kv.Value)));
        return (rows, summary);
    }

    static JsonObject Row(BenchProblem p, SampleRecord r, EvalSettings settings, ReadabilityFilter filter) => new()
    {
        ["messages"] = new JsonArray(
            new JsonObject { ["role"] = "user", ["content"] = settings.UserTurn(p.Problem) },
            new JsonObject { ["role"] = "assistant", ["content"] = ReadabilityFilter.Completion(r) }),
        ["problem_id"] = p.Id,
        ["answer"] = p.Answer,
        ["subject"] = p.Subject,
        ["source"] = settings.Model,
        ["settings"] = settings.Key,
        ["sample"] = r.Sample,
        ["seed"] = r.Seed,
        ["verdict"] = r.Reason,
        ["extracted"] = r.Extracted,
        ["completion_tokens"] = r.CompletionTokens,
        ["language_consistency"] = Math.Round(filter.LanguageScore(r), 4),
        ["repetition_rate"] = Math.Round(Rewards.RepetitionPenaltyReward.RepetitionRate(ReadabilityFilter.Completion(r), filter.RepetitionNGrams), 4),
    };

    /// <summary>Writes the dataset and the summary atomically (temporary name, then rename).</summary>
    public static void Write(string outDir, IReadOnlyList<JsonObject> rows, SamplingSummary summary)
    {
        var lineOptions = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        WriteAtomic(Path.Combine(outDir, DatasetFile), string.Concat(rows.Select(r => r.ToJsonString(lineOptions) + "\n")));
        var options = new JsonSerializerOptions(lineOptions) { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        WriteAtomic(Path.Combine(outDir, SummaryFile), JsonSerializer.Serialize(summary, options) + "\n");
    }

    static void WriteAtomic(string path, string text)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
