using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Eval;

namespace R1Sharp.Board;

/// <summary>
/// An evaluation folder as `r1 eval` (and `r1 sample`, which grades on the same runner) leaves it: samples.jsonl, one
/// graded sample a line, appended while the run goes; and once it ends summary.json, problems.jsonl and report.md.
/// While the summary is missing or older than the samples, pass@1 ± SE and the pass@k curve are computed here from
/// the samples with the same estimators (<see cref="PassAtK"/>); cons@k needs the verifier's vote and waits for the
/// finished summary.
/// </summary>
public sealed class EvalRun
{
    struct Sample
    {
        public long Offset;
        public int Length, SampleNo, Tokens;
        public bool Correct, Truncated;
    }

    readonly object gate = new();
    readonly JsonlTail samples, problems;
    readonly string summaryPath;
    readonly Dictionary<string, Dictionary<string, List<Sample>>> bySettings = new(StringComparer.Ordinal); // settings → problem → samples
    readonly List<string> problemOrder = new();
    readonly Dictionary<string, JsonObject> problemInfo = new(StringComparer.Ordinal);
    string? lastSettings;
    int samplesGeneration, problemsGeneration;
    JsonObject? summary;
    string? summaryNote;
    DateTime summaryTime;

    public string Dir { get; }

    public EvalRun(string dir)
    {
        Dir = dir;
        samples = new JsonlTail(Path.Combine(dir, EvalReport.ResultsFile));
        problems = new JsonlTail(Path.Combine(dir, EvalReport.ProblemsFile));
        summaryPath = Path.Combine(dir, EvalReport.SummaryFile);
    }

    public void Refresh()
    {
        lock (gate)
        {
            samples.Refresh(OnSample);
            if (!samples.Exists || samples.Generation != samplesGeneration) ClearSamples();
            problems.Refresh(OnProblem);
            if (!problems.Exists || problems.Generation != problemsGeneration) { problemsGeneration = problems.Generation; problemInfo.Clear(); }
            ReadSummary();
        }
    }

    void ClearSamples()
    {
        samplesGeneration = samples.Generation;
        bySettings.Clear(); problemOrder.Clear(); lastSettings = null;
    }

    void OnSample(int line, long start, ReadOnlySpan<byte> bytes)
    {
        if (samples.Generation != samplesGeneration) ClearSamples();
        if (samples.ParseObject(line, bytes) is not { } o) return;
        string? settings = Str(o, "settings"), id = Str(o, "problem_id");
        if (settings is null || id is null || !o.TryGetProperty("correct", out var c) || c.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            samples.Skip(line, "not a graded sample (needs settings, problem_id and correct)");
            return;
        }
        if (!bySettings.TryGetValue(settings, out var perProblem)) bySettings[settings] = perProblem = new(StringComparer.Ordinal);
        if (!perProblem.TryGetValue(id, out var list))
        {
            perProblem[id] = list = new List<Sample>();
            if (!problemOrder.Contains(id)) problemOrder.Add(id);
        }
        list.Add(new Sample
        {
            Offset = start, Length = bytes.Length, Correct = c.GetBoolean(),
            SampleNo = o.TryGetProperty("sample", out var s) && s.TryGetInt32(out int sn) ? sn : list.Count,
            Tokens = o.TryGetProperty("completion_tokens", out var t) && t.TryGetInt32(out int tn) ? tn : 0,
            Truncated = Str(o, "finish_reason") == "length",
        });
        lastSettings = settings;
    }

    void OnProblem(int line, long start, ReadOnlySpan<byte> bytes)
    {
        if (problems.Generation != problemsGeneration) { problemsGeneration = problems.Generation; problemInfo.Clear(); }
        if (problems.ParseObject(line, bytes) is not { } o) return;
        if (Str(o, "id") is not { } id) { problems.Skip(line, "no \"id\": not a problem line"); return; }
        problemInfo[id] = (JsonObject)JsonNode.Parse(o.GetRawText())!;
    }

    static string? Str(JsonElement o, string name) => o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    void ReadSummary()
    {
        var info = new FileInfo(summaryPath);
        if (!info.Exists) { summary = null; summaryNote = null; return; }
        if (info.LastWriteTimeUtc == summaryTime) return;
        summaryTime = info.LastWriteTimeUtc;
        try
        {
            summary = JsonNode.Parse(File.ReadAllText(summaryPath)) as JsonObject;
            summaryNote = summary is null ? "summary.json is not a JSON object; skipped" : null;
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            summary = null;
            summaryNote = $"summary.json skipped: {e.Message.Split(". ")[0]}";
        }
    }

    /// <summary>The settings whose samples are shown: the finished summary's, else the ones of the last line.</summary>
    string? Settings => summary?["settings_key"]?.GetValueKind() == JsonValueKind.String && bySettings.ContainsKey((string)summary["settings_key"]!)
        ? (string)summary["settings_key"]! : lastSettings;

    bool SummaryIsEval => summary?["pass1"] is JsonValue;

    /// <summary>Scores, curve and per-problem table: {bench, model, live, k, problems, samples, pass1, pass1_std_err,
    /// pass_at_k{}, cons_at_k, by_subject, by_level, problem_rows[], notes[]}.</summary>
    public JsonObject ToJson()
    {
        lock (gate)
        {
            string? key = Settings;
            var perProblem = key is null ? new Dictionary<string, List<Sample>>() : bySettings[key];
            int sampleCount = perProblem.Values.Sum(l => l.Count);
            bool live = !SummaryIsEval || summary!["samples"]?.GetValueKind() != JsonValueKind.Number || (int)summary["samples"]! != sampleCount && sampleCount > 0;
            var counts = problemOrder.Where(perProblem.ContainsKey).Select(id => (Id: id, N: perProblem[id].Count, C: perProblem[id].Count(s => s.Correct))).ToList();
            var result = new JsonObject
            {
                ["bench"] = summary?["bench"]?.DeepClone() ?? Path.GetFileName(Dir),
                ["model"] = summary?["settings"]?["model"]?.DeepClone(),
                ["settings_key"] = key,
                ["live"] = live,
            };
            if (!live)
            {
                foreach (var name in new[] { "k", "problems", "samples", "pass1", "pass1_std_err", "pass_at_k", "cons_at_k", "mean_completion_tokens", "truncated_fraction", "by_subject", "by_level", "settings" })
                    result[name] = summary![name]?.DeepClone();
            }
            else
            {
                var (mean, se) = PassAtK.Pass1(counts.Select(c => (c.N, c.C)).ToList());
                var curve = PassAtK.Curve(counts.Select(c => (c.N, c.C)).ToList());
                var all = perProblem.Values.SelectMany(l => l).ToList();
                result["k"] = curve.Length;
                result["problems"] = counts.Count;
                result["samples"] = sampleCount;
                result["pass1"] = mean;
                result["pass1_std_err"] = se;
                result["pass_at_k"] = new JsonObject(curve.Select((v, i) => KeyValuePair.Create((i + 1).ToString(), (JsonNode?)v)));
                result["cons_at_k"] = null;
                result["mean_completion_tokens"] = all.Count == 0 ? 0 : all.Average(s => (double)s.Tokens);
                result["truncated_fraction"] = all.Count == 0 ? 0 : all.Count(s => s.Truncated) / (double)all.Count;
                result["by_subject"] = LiveGroups(counts, "subject");
                result["by_level"] = LiveGroups(counts, "level");
            }
            var rows = new JsonArray();
            foreach (var (id, n, c) in counts)
            {
                problemInfo.TryGetValue(id, out var p);
                rows.Add(new JsonObject
                {
                    ["id"] = id, ["subject"] = p?["subject"]?.DeepClone(), ["level"] = p?["level"]?.DeepClone(), ["gold"] = p?["gold"]?.DeepClone(),
                    ["samples"] = n, ["correct"] = c,
                    ["consensus_answer"] = live ? null : p?["consensus_answer"]?.DeepClone(),
                    ["consensus_correct"] = live ? null : p?["consensus_correct"]?.DeepClone(),
                });
            }
            result["problem_rows"] = rows;
            var notes = samples.Notes().Concat(problems.Notes()).ToList();
            if (summaryNote is not null) notes.Add(summaryNote);
            if (bySettings.Count > 1) notes.Add($"{EvalReport.ResultsFile} holds samples of {bySettings.Count} settings; showing {key}");
            if (live && sampleCount > 0) notes.Add("live: computed from samples.jsonl while the eval runs (cons@k when it finishes)");
            result["notes"] = new JsonArray(notes.Select(n => (JsonNode?)n).ToArray());
            return result;
        }
    }

    /// <summary>Per-subject or per-level pass@1 ± SE while the eval runs, when problems.jsonl (an earlier finished
    /// run in the same folder) names the groups; otherwise null.</summary>
    JsonObject? LiveGroups(List<(string Id, int N, int C)> counts, string field)
    {
        var groups = counts.Where(c => problemInfo.TryGetValue(c.Id, out var p) && p[field] is JsonValue)
            .GroupBy(c => problemInfo[c.Id][field]!.ToString()).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (groups.Count == 0) return null;
        var o = new JsonObject();
        foreach (var g in groups)
        {
            var (m, s) = PassAtK.Pass1(g.Select(c => (c.N, c.C)).ToList());
            o[g.Key] = new JsonObject { ["problems"] = g.Count(), ["pass1"] = m, ["pass1_std_err"] = s, ["cons_at_k"] = null };
        }
        return o;
    }

    /// <summary>Every sample of one problem (reasoning, answer, extracted answer, verdict and why), in sample order.</summary>
    public JsonObject Problem(string id)
    {
        lock (gate)
        {
            if (Settings is not { } key || !bySettings[key].TryGetValue(id, out var list))
                throw new BoardRequestException($"no samples of problem {Excerpt.Quote(id, 60)} in {Path.Combine(Dir, EvalReport.ResultsFile)}", 404);
            var items = new JsonArray();
            using (var reader = new LineReader(samples.Path))
                foreach (var s in list.OrderBy(s => s.SampleNo))
                {
                    try { items.Add(JsonNode.Parse(reader.Read(s.Offset, s.Length))); }
                    catch (JsonException) { items.Add(new JsonObject { ["error"] = "this line changed on disk; refresh" }); }
                }
            problemInfo.TryGetValue(id, out var p);
            return new JsonObject { ["id"] = id, ["problem"] = p?.DeepClone(), ["samples"] = items };
        }
    }

    /// <summary>Per problem (id → samples, correct) of the shown settings, for side-by-side comparisons.</summary>
    public Dictionary<string, (int N, int C, bool? Consensus)> Outcomes()
    {
        lock (gate)
        {
            var result = new Dictionary<string, (int, int, bool?)>(StringComparer.Ordinal);
            if (Settings is not { } key) return result;
            foreach (var (id, list) in bySettings[key])
            {
                bool? cons = problemInfo.TryGetValue(id, out var p) && p["consensus_correct"] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False
                    ? v.GetValue<bool>() : null;
                result[id] = (list.Count, list.Count(s => s.Correct), cons);
            }
            return result;
        }
    }

    public IEnumerable<string> Notes() { lock (gate) return samples.Notes().Concat(problems.Notes()).Concat(summaryNote is null ? [] : [summaryNote]).ToList(); }
}
