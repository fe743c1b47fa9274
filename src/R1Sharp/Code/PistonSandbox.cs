using System.Globalization;
using System.Text.Json.Nodes;

namespace R1Sharp.Code;

/// <summary>
/// Piston's execute API (engineer-man/piston, POST /api/v2/execute), as open-r1 drives a Piston fleet: one file, the
/// language and version ("*": whichever the service has), stdin, run_timeout and compile_timeout in milliseconds,
/// run_memory_limit in bytes. The answer's run stage (stdout, stderr, code, signal, status: TO timeout, OL/EL output
/// limit, SG signal, RE runtime error, XX the service's own failure) and compile stage become our verdicts.
/// </summary>
public sealed class PistonSandbox(RemoteSandboxOptions options, string version = "*", HttpMessageHandler? handler = null)
    : RemoteSandbox(options, "api/v2/execute", handler)
{
    static readonly string[] Signals = ["", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV",
        "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ"];

    protected override JsonObject Request(CodeRun run, SandboxLimits limits)
    {
        string language = ServiceLanguage(run.Language, l => l switch { CodeLanguage.Python => "python", CodeLanguage.CSharp => "csharp", _ => null });
        string file = CodeRows.Canonical(run.Language) == CodeLanguage.CSharp ? "Program.cs" : "main.py";
        return new JsonObject
        {
            ["language"] = language,
            ["version"] = version,
            ["files"] = new JsonArray(new JsonObject { ["name"] = file, ["content"] = SingleFile(run) }),
            ["stdin"] = run.Stdin ?? "",
            ["args"] = new JsonArray(),
            ["run_timeout"] = (long)(limits.WallSeconds * 1000),
            ["compile_timeout"] = 30_000,
            ["run_memory_limit"] = limits.MemoryBytes,
        };
    }

    protected override (RunResult?, string?) Parse(JsonNode? answer, SandboxLimits limits, string text)
    {
        if (answer is not JsonObject o) return (Malformed(text, "Piston"), null);
        if (o["compile"] is JsonObject compile && (Int(compile["code"]) ?? 0) != 0)
        {
            string errors = Str(compile["stderr"]) is { Length: > 0 } e ? e : Str(compile["output"]);
            return (new RunResult(CodeVerdict.CompileError, Int(compile["code"]), "", RunClassifier.FirstLines(errors), TimeSpan.Zero,
                errors.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "compilation failed"), null);
        }
        if (o["run"] is not JsonObject r) return (Malformed(text, "Piston"), null);
        string status = Str(r["status"]);
        if (status == "XX") return (null, Str(r["message"]) is { Length: > 0 } m ? m : "internal error (status XX)");
        int? code = Int(r["code"]);
        string signal = Str(r["signal"]);
        int sig = Array.IndexOf(Signals, signal);
        int? exit = code ?? (sig > 0 ? 128 + sig : null);
        var wall = TimeSpan.FromMilliseconds(Int(r["wall_time"]) ?? 0);
        var outcome = new ChildOutcome(status is "TO" ? null : exit ?? 0, Str(r["stdout"]), Str(r["stderr"]), wall,
            WallExceeded: status == "TO", OutputExceeded: status is "OL" or "EL");
        return (RunClassifier.Classify(outcome, limits), null);
    }

    static string Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s ?? "" : "";

    static int? Int(JsonNode? n) => n is JsonValue v ? (v.TryGetValue(out int i) ? i : v.TryGetValue(out double d) ? (int)d
        : v.TryGetValue(out string? s) && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int p) ? p : null) : null;
}
