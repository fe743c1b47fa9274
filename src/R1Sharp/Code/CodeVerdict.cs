namespace R1Sharp.Code;

/// <summary>What became of one program run. <see cref="Passed"/> means it exited 0 (for a stdin/stdout test the
/// judge then compares the output); <see cref="Failed"/> means a test assertion failed.</summary>
public enum CodeVerdict { Passed, Failed, CompileError, Timeout, MemoryLimit, OutputLimit, RuntimeError }

public static class CodeVerdictNames
{
    /// <summary>snake_case, as results files and summaries spell it.</summary>
    public static string Name(this CodeVerdict v) => v switch
    {
        CodeVerdict.Passed => "passed",
        CodeVerdict.Failed => "failed",
        CodeVerdict.CompileError => "compile_error",
        CodeVerdict.Timeout => "timeout",
        CodeVerdict.MemoryLimit => "memory_limit",
        CodeVerdict.OutputLimit => "output_limit",
        _ => "runtime_error",
    };
}
