using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Code;

namespace R1Sharp.Eval;

/// <summary>One benchmark problem: a stable id (the resume key), the problem text, the gold answer as the verifier
/// reads it, and MATH-500's subject and level when the file has them. A code problem carries its tests instead
/// (<see cref="Code"/>); its Answer only names what is checked.</summary>
public sealed record BenchProblem(string Id, string Problem, string Answer, string? Subject = null, int? Level = null, CodeSpec? Code = null);

/// <summary>
/// Reads benchmark JSONL files. The known names resolve to NAME.jsonl in a benchmarks folder (humaneval-cs to
/// humaneval_cs.jsonl); anything else is a path. Math rows are taken as the public files spell them: problem or
/// question; answer as a string ("025"), a number (AMC's 27.0) or GSM8K's worked solution ending "#### 18"; id from
/// unique_id, id or idx, else the line number. Code rows (human-eval, MultiPL-E, LiveCodeBench's stdin/stdout) are read
/// by <see cref="CodeRows"/>; id from task_id, name or question_id.
/// </summary>
public static class Benchmark
{
    public static readonly string[] Known = ["math500", "aime24", "aime25", "amc23", "gsm8k", "humaneval", "humaneval-cs"];

    /// <param name="nameOrPath">a known name or a .jsonl path</param>
    /// <param name="benchmarksDir">where known names live; null looks in $R1SHARP_BENCHMARKS, then in a shared/benchmarks
    /// folder beside this program or the working directory or any of their parents</param>
    public static (string Name, IReadOnlyList<BenchProblem> Problems) Load(string nameOrPath, string? benchmarksDir = null)
    {
        string path = nameOrPath;
        string name = Path.GetFileNameWithoutExtension(nameOrPath);
        if (Known.Contains(nameOrPath))
        {
            var dir = benchmarksDir ?? FindBenchmarksDir()
                ?? throw new R1SharpException($"--bench {nameOrPath}: no benchmarks folder found (give --bench-dir, set R1SHARP_BENCHMARKS, or pass a .jsonl path)");
            path = Path.Combine(dir, nameOrPath.Replace('-', '_') + ".jsonl");
        }
        if (!File.Exists(path)) throw new R1SharpException($"{path}: benchmark file not found");
        return (name, Parse(path));
    }

    public static IReadOnlyList<BenchProblem> Parse(string path)
    {
        var problems = new List<BenchProblem>();
        var ids = new HashSet<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject row;
            try { row = JsonNode.Parse(line) as JsonObject ?? throw new R1SharpException($"{path}:{lineNo}: expected a JSON object"); }
            catch (JsonException e) { throw new R1SharpException($"{path}:{lineNo}: not valid JSON ({e.Message})"); }
            if (CodeRows.Parse(row, $"{path}:{lineNo}") is { } code)
            {
                if (code.Statement.Trim().Length == 0) throw new R1SharpException($"{path}:{lineNo}: a stdin/stdout problem needs its statement in question_content, question, problem, prompt or description");
                string codeId = code.Id ?? problems.Count.ToString(CultureInfo.InvariantCulture);
                if (!ids.Add(codeId)) throw new R1SharpException($"{path}:{lineNo}: duplicate problem id \"{codeId}\" (ids key the resumable results)");
                string statement = code.Spec.Style == CodeTestStyle.Stdio
                    ? code.Statement + "\n\nRead the input from standard input and write the answer to standard output."
                    : code.Statement;
                string checks = code.Spec.EntryPoint ?? $"{code.Spec.Cases.Count} tests";
                problems.Add(new BenchProblem(codeId, statement, checks, Text(row, "difficulty") ?? Text(row, "platform"), null, code.Spec));
                continue;
            }
            string problem = Text(row, "problem") ?? Text(row, "question")
                ?? throw new R1SharpException($"{path}:{lineNo}: no \"problem\" or \"question\" field (nor a code problem's prompt/test/entry_point, tests or input_output)");
            string answer = Answer(row["answer"]) ?? throw new R1SharpException($"{path}:{lineNo}: no \"answer\" field");
            string id = Text(row, "unique_id") ?? Text(row, "id") ?? Text(row, "idx") ?? (problems.Count).ToString(CultureInfo.InvariantCulture);
            if (!ids.Add(id)) throw new R1SharpException($"{path}:{lineNo}: duplicate problem id \"{id}\" (ids key the resumable results)");
            int? level = row["level"] is JsonValue lv && lv.TryGetValue(out int l) ? l : int.TryParse(Text(row, "level")?.Replace("Level ", ""), out var l2) ? l2 : null;
            problems.Add(new BenchProblem(id, problem, answer, Text(row, "subject") ?? Text(row, "type"), level));
        }
        if (problems.Count == 0) throw new R1SharpException($"{path}: no problems in the file");
        return problems;
    }

    /// <summary>GSM8K's reference is a worked solution ending in "#### 18"; the gold answer is what follows the marks,
    /// without thousands separators. AMC's numbers are floats (27.0): integral ones are written as integers.</summary>
    static string? Answer(JsonNode? node)
    {
        switch (node)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                double d = v.GetValue<double>();
                return double.IsInteger(d) && Math.Abs(d) < 1e15 ? ((long)d).ToString(CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture);
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                string s = v.GetValue<string>();
                int hashes = s.LastIndexOf("####", StringComparison.Ordinal);
                return hashes < 0 ? s.Trim() : s[(hashes + 4)..].Trim().Replace(",", "");
            default: return null;
        }
    }

    static string? Text(JsonObject row, string key) => row[key] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
        _ => null,
    };

    static string? FindBenchmarksDir()
    {
        var env = Environment.GetEnvironmentVariable("R1SHARP_BENCHMARKS");
        if (!string.IsNullOrEmpty(env)) return env;
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "shared", "benchmarks");
                if (Directory.Exists(candidate)) return candidate;
            }
        return null;
    }
}
