using System.Text.Json.Nodes;

namespace R1Sharp.Code;

/// <summary>
/// SandboxFusion's run_code API (bytedance/SandboxFusion, POST /run_code), as verl's sandbox_fusion reward calls it:
/// code, language, stdin, run_timeout and compile_timeout in seconds, memory_limit_MB. The answer's status is Success
/// or Failed for what the program did (compile_result/run_result: Finished, TimeLimitExceeded, Error; return_code,
/// stdout, stderr) and SandboxError for the service's own failure, which is retried.
/// </summary>
public sealed class SandboxFusionSandbox(RemoteSandboxOptions options, HttpMessageHandler? handler = null)
    : RemoteSandbox(options, "run_code", handler)
{
    protected override JsonObject Request(CodeRun run, SandboxLimits limits) => new()
    {
        ["code"] = SingleFile(run),
        ["language"] = ServiceLanguage(run.Language, l => l switch { CodeLanguage.Python => "python", CodeLanguage.CSharp => "csharp", _ => null }),
        ["stdin"] = run.Stdin ?? "",
        ["run_timeout"] = limits.WallSeconds,
        ["compile_timeout"] = 30,
        ["memory_limit_MB"] = (int)(limits.MemoryBytes >> 20),
    };

    protected override (RunResult?, string?) Parse(JsonNode? answer, SandboxLimits limits, string text)
    {
        if (answer is not JsonObject o || o["status"] is null) return (Malformed(text, "SandboxFusion"), null);
        string status = Str(o["status"]);
        if (status == "SandboxError") return (null, Str(o["message"]) is { Length: > 0 } m ? m : "SandboxError");
        if (o["compile_result"] is JsonObject c && (Str(c["status"]) != "Finished" || (Int(c["return_code"]) ?? 0) != 0))
        {
            if (Str(c["status"]) == "TimeLimitExceeded") return (RunResult.Stopped(CodeVerdict.CompileError, "compilation timed out"), null);
            string errors = Str(c["stderr"]) is { Length: > 0 } e ? e : Str(c["stdout"]);
            return (new RunResult(CodeVerdict.CompileError, Int(c["return_code"]), "", RunClassifier.FirstLines(errors), TimeSpan.Zero,
                errors.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "compilation failed"), null);
        }
        if (o["run_result"] is not JsonObject r) return (Malformed(text, "SandboxFusion"), null);
        string runStatus = Str(r["status"]);
        var wall = TimeSpan.FromSeconds(r["execution_time"] is JsonValue t && t.TryGetValue(out double sec) ? sec : 0);
        var outcome = new ChildOutcome(runStatus == "TimeLimitExceeded" ? null : Int(r["return_code"]) ?? (runStatus == "Finished" ? 0 : 1),
            Str(r["stdout"]), Str(r["stderr"]), wall, WallExceeded: runStatus == "TimeLimitExceeded", OutputExceeded: false);
        return (RunClassifier.Classify(outcome, limits), null);
    }

    static string Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s ?? "" : "";

    static int? Int(JsonNode? n) => n is JsonValue v ? (v.TryGetValue(out int i) ? i : v.TryGetValue(out double d) ? (int)d : null) : null;
}
