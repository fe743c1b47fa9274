using System.Globalization;

namespace R1Sharp.Code;

/// <summary>
/// Turns what a sandboxed process did into a verdict. The limits are told apart by how they end a program: the parent
/// stops it for wall time or output; RLIMIT_CPU kills it with SIGXCPU (exit 152 through bubblewrap, 128 + signal);
/// RLIMIT_FSIZE with SIGXFSZ (153); RLIMIT_AS and RLIMIT_DATA make allocation fail, which Python reports as MemoryError and .NET as
/// OutOfMemoryException (or a runtime that cannot start, HRESULT 0x8007000E). A failed test is Python's AssertionError
/// or .NET's failed Debug.Assert ("Assertion failed", FailFast's exit 134).
/// </summary>
public static class RunClassifier
{
    const int SigKill = 9, SigXcpu = 24, SigXfsz = 25;
    const int StderrLines = 20;

    static readonly string[] MemoryMarkers = ["MemoryError", "OutOfMemoryException", "Out of memory.", "0x8007000E", "Cannot allocate memory", "std::bad_alloc", "out of memory"];
    static readonly string[] AssertionMarkers = ["AssertionError", "Assertion failed", "Assertion Failed"];

    public static RunResult Classify(ChildOutcome o, SandboxLimits limits)
    {
        string stderr = FirstLines(o.Stderr);
        RunResult R(CodeVerdict v, string? detail) => new(v, o.ExitCode, o.Stdout, stderr, o.Wall, detail);
        if (o.OutputExceeded) return R(CodeVerdict.OutputLimit, $"printed more than {Bytes(limits.MaxOutputBytes)}: stopped");
        if (o.WallExceeded) return R(CodeVerdict.Timeout, $"still running after {Seconds(limits.WallSeconds)} s (wall-clock limit): stopped");
        int code = o.ExitCode ?? -1;
        if (code == 0) return R(CodeVerdict.Passed, null);
        if (code == 128 + SigXcpu) return R(CodeVerdict.Timeout, $"used {Seconds(limits.CpuSeconds)} s of CPU (CPU time limit): killed");
        if (code == 128 + SigXfsz) return R(CodeVerdict.RuntimeError, $"wrote a file past {Bytes(limits.MaxFileBytes)} (file size limit): killed");
        if (MemoryMarkers.Any(m => o.Stderr.Contains(m, StringComparison.Ordinal)))
            return R(CodeVerdict.MemoryLimit, $"ran out of memory (limit {Bytes(limits.MemoryBytes)}): {LastLine(o.Stderr)}");
        if (AssertionMarkers.Any(m => o.Stderr.Contains(m, StringComparison.Ordinal))) return R(CodeVerdict.Failed, LastLine(o.Stderr, assertion: true));
        if (code == 128 + SigKill)
            return o.Wall.TotalSeconds >= limits.CpuSeconds ? R(CodeVerdict.Timeout, $"killed after {Seconds(o.Wall.TotalSeconds)} s (CPU time limit)")
                : R(CodeVerdict.RuntimeError, "killed (SIGKILL)");
        if (code > 128 && code < 128 + 65) return R(CodeVerdict.RuntimeError, $"killed by signal {code - 128}{(LastLine(o.Stderr) is { Length: > 0 } l ? ": " + l : "")}");
        return R(CodeVerdict.RuntimeError, LastLine(o.Stderr) is { Length: > 0 } last ? last : $"exit code {code}");
    }

    /// <summary>The line that says what went wrong: Python's traceback ends with it; .NET's "Unhandled exception."
    /// message and FailFast's "Assertion failed." come first.</summary>
    static string LastLine(string stderr, bool assertion = false)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length == 0) return "";
        var dotnet = lines.FirstOrDefault(l => l.StartsWith("Unhandled exception.", StringComparison.Ordinal) || l.StartsWith("Process terminated.", StringComparison.Ordinal)
            || l.StartsWith("Stack overflow.", StringComparison.Ordinal));
        if (dotnet is not null)
        {
            int i = Array.IndexOf(lines, dotnet);
            return Excerpt.Quote(assertion && i + 1 < lines.Length ? dotnet + " " + lines[i + 1] : dotnet, 300).Trim('"');
        }
        return Excerpt.Quote(lines[^1], 300).Trim('"');
    }

    public static string FirstLines(string text)
    {
        var lines = text.Split('\n');
        return lines.Length <= StderrLines ? text : string.Join('\n', lines.Take(StderrLines)) + $"\n… ({lines.Length - StderrLines} more lines)";
    }

    static string Seconds(double s) => s.ToString("0.###", CultureInfo.InvariantCulture);

    static string Bytes(long b) => b >= 1L << 20 ? $"{b / (double)(1L << 20):0.#} MiB" : $"{b} bytes";
}
