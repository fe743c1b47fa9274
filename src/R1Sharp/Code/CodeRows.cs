using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Code;

/// <summary>A code problem read from a row: its id, the statement a chat model is shown, and its tests.</summary>
public sealed record CodeRow(string? Id, string Statement, CodeSpec Spec);

/// <summary>
/// Reads code problems in the formats the public benchmarks ship, told apart by their fields:
/// <list type="bullet">
/// <item>human-eval (HumanEval.jsonl): task_id, prompt, test, entry_point — Python, checked by check(entry_point);</item>
/// <item>MultiPL-E: name, language, prompt, tests, stop_tokens — C# here (humaneval_cs.jsonl), any other language as
/// prompt + completion + tests when the sandbox knows it as a command line;</item>
/// <item>stdin/stdout (LiveCodeBench, APPS, TACO, open-r1's verification_info): input_output {"inputs", "outputs"}, or
/// test_cases [{"input", "output"}], or LiveCodeBench's public_test_cases/private_test_cases; the statement in
/// question_content, question, problem, prompt or description; language defaults to python.</item>
/// </list>
/// A row with none of these fields is not a code problem (null); a row with some of them and not the rest is an error
/// naming the row and the field.
/// </summary>
public static class CodeRows
{
    public static bool LooksLikeCode(JsonObject row) =>
        row.ContainsKey("entry_point") || row.ContainsKey("tests") || row.ContainsKey("input_output") || row.ContainsKey("test_cases")
        || row.ContainsKey("public_test_cases") || (row.ContainsKey("test") && row.ContainsKey("prompt"));

    /// <param name="where">"file:line", for errors</param>
    public static CodeRow? Parse(JsonObject row, string where)
    {
        if (!LooksLikeCode(row)) return null;
        string? language = Text(row, "language") is { } l ? Canonical(l) : null;
        if (row.ContainsKey("entry_point") || (row.ContainsKey("test") && !row.ContainsKey("tests")))
        {
            string prompt = Required(row, "prompt", where), test = Required(row, "test", where), entry = Required(row, "entry_point", where);
            language ??= CodeLanguage.Python;
            var spec = new CodeSpec
            {
                Style = CodeTestStyle.HumanEval, Language = language, Prompt = prompt, EntryPoint = entry,
                Harness = test + "\n" + $"check({entry})\n", StopTokens = language == CodeLanguage.Python ? CodeSpec.HumanEvalStops : [],
            };
            return new CodeRow(Text(row, "task_id"), Statement(language, prompt), spec);
        }
        if (row.ContainsKey("tests"))
        {
            string prompt = Required(row, "prompt", where), tests = Required(row, "tests", where);
            if (language is null) throw new R1SharpException($"{where}: a MultiPL-E row needs a \"language\" field");
            var stops = row["stop_tokens"] is JsonArray a ? a.Select(n => n?.GetValue<string>() ?? "").Where(s => s.Length > 0).ToArray() : [];
            bool cs = language == CodeLanguage.CSharp;
            var spec = new CodeSpec
            {
                Style = CodeTestStyle.MultiplE, Language = language, Prompt = prompt, StopTokens = stops,
                EntryPoint = cs ? MultiplE.EntryPoint(prompt) : null,
                Harness = cs ? MultiplE.Harness(prompt, tests) : tests,
            };
            return new CodeRow(Text(row, "name") ?? Text(row, "task_id"), Statement(language, prompt), spec);
        }
        var cases = Cases(row, where);
        if (cases.Count == 0) throw new R1SharpException($"{where}: no test cases (input_output, test_cases or public_test_cases is empty)");
        string statement = Text(row, "question_content") ?? Text(row, "question") ?? Text(row, "problem") ?? Text(row, "prompt") ?? Text(row, "description") ?? "";
        return new CodeRow(Text(row, "question_id") ?? Text(row, "problem_id") ?? Text(row, "task_id") ?? Text(row, "id"),
            statement, new CodeSpec { Style = CodeTestStyle.Stdio, Language = language ?? CodeLanguage.Python, Cases = cases });
    }

    /// <summary>A GRPO reference (the dataset's answer field) holding a code problem's tests as JSON: any of the row
    /// formats above, without the statement.</summary>
    public static CodeSpec FromReference(string reference)
    {
        JsonObject row;
        try { row = JsonNode.Parse(reference) as JsonObject ?? throw new R1SharpException("not a JSON object"); }
        catch (Exception e) when (e is JsonException or R1SharpException)
        {
            throw new R1SharpException($"code reward: the reference answer is not a code problem's tests as JSON ({e.Message}): {Excerpt.Quote(reference)}");
        }
        return Parse(row, "code reward reference")?.Spec
            ?? throw new R1SharpException($"code reward: the reference has no tests (expected input_output, test_cases, test + entry_point or tests): {Excerpt.Quote(reference)}");
    }

    /// <summary>py → python, cs/c# → csharp; other names as they are (lower case).</summary>
    public static string Canonical(string language)
    {
        string l = language.Trim().ToLowerInvariant();
        if (CodeLanguage.PythonLanguage.Is(l)) return CodeLanguage.Python;
        if (CodeLanguage.CSharpLanguage.Is(l)) return CodeLanguage.CSharp;
        return l;
    }

    static string Statement(string language, string prompt)
    {
        string name = language switch { CodeLanguage.Python => "Python", CodeLanguage.CSharp => "C#", _ => language };
        string fence = language == CodeLanguage.CSharp ? "csharp" : language;
        return $"Complete the following {name} function.\n\n```{fence}\n{prompt.TrimEnd()}\n```";
    }

    static List<TestCase> Cases(JsonObject row, string where)
    {
        var cases = new List<TestCase>();
        if (row["input_output"] is { } io)
        {
            var obj = Unwrap(io, "input_output", where) as JsonObject ?? throw new R1SharpException($"{where}: \"input_output\" must be an object with \"inputs\" and \"outputs\"");
            if (obj["fn_name"] is not null) throw new R1SharpException($"{where}: call-based tests (input_output.fn_name) are not supported; only stdin/stdout tests");
            var inputs = obj["inputs"] as JsonArray ?? throw new R1SharpException($"{where}: input_output has no \"inputs\" list");
            var outputs = obj["outputs"] as JsonArray ?? throw new R1SharpException($"{where}: input_output has no \"outputs\" list");
            if (inputs.Count != outputs.Count) throw new R1SharpException($"{where}: input_output has {inputs.Count} inputs and {outputs.Count} outputs");
            for (int i = 0; i < inputs.Count; i++) cases.Add(new TestCase(Io(inputs[i], where), Io(outputs[i], where)));
        }
        foreach (var key in new[] { "test_cases", "public_test_cases", "private_test_cases" })
        {
            if (row[key] is not { } node) continue;
            var list = Unwrap(node, key, where);
            if (list is JsonObject { } o && o["inputs"] is JsonArray ins && o["outputs"] is JsonArray outs && ins.Count == outs.Count)
            {
                for (int i = 0; i < ins.Count; i++) cases.Add(new TestCase(Io(ins[i], where), Io(outs[i], where)));
                continue;
            }
            if (list is not JsonArray arr) throw new R1SharpException($"{where}: \"{key}\" must be a list of {{\"input\", \"output\"}}");
            foreach (var c in arr)
            {
                if (c is not JsonObject t || t["input"] is null || t["output"] is null) throw new R1SharpException($"{where}: each of \"{key}\" needs \"input\" and \"output\"");
                string type = (t["testtype"] ?? t["type"])?.GetValue<string>() ?? "stdin";
                if (type is not ("stdin" or "stdin_stdout"))
                    throw new R1SharpException($"{where}: {key} test type \"{type}\" is not supported; only stdin/stdout tests");
                cases.Add(new TestCase(Io(t["input"], where), Io(t["output"], where)));
            }
        }
        return cases;
    }

    /// <summary>Fields that hold JSON as a string (LiveCodeBench, APPS) are parsed.</summary>
    static JsonNode? Unwrap(JsonNode node, string key, string where)
    {
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            try { return JsonNode.Parse(v.GetValue<string>()); }
            catch (JsonException e) { throw new R1SharpException($"{where}: \"{key}\" is a string that is not JSON ({e.Message})"); }
        }
        return node;
    }

    /// <summary>An input or output: a string, or (APPS) a list of lines.</summary>
    static string Io(JsonNode? node, string where) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v => v.ToJsonString(),
        JsonArray a => string.Join("\n", a.Select(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.String ? xv.GetValue<string>() : x?.ToJsonString() ?? "")) + "\n",
        _ => throw new R1SharpException($"{where}: a test input or output must be a string"),
    };

    static string? Text(JsonObject row, string key) => row[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
        : row[key] is JsonValue n && n.GetValueKind() == JsonValueKind.Number ? n.ToJsonString() : null;

    static string Required(JsonObject row, string key, string where) => Text(row, key)
        ?? throw new R1SharpException($"{where}: no \"{key}\" string (a code problem in this format needs prompt, {(row.ContainsKey("tests") ? "tests and language" : "test and entry_point")})");
}
