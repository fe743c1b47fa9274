namespace R1Sharp.Code;

/// <summary>
/// Runs untrusted programs: the local sandbox, or an existing sandbox service over HTTP (Piston, SandboxFusion). An
/// executor bounds its own concurrency (callers may start many runs at once) and never throws for what the program
/// did: a crash, a wrong answer or a limit is a <see cref="RunResult"/>. It throws <see cref="R1SharpException"/> only
/// for what the user must fix: an unsupported language, a sandbox that cannot give the isolation asked for, a service
/// that stays unreachable after its retries.
/// </summary>
public interface ICodeExecutor : IDisposable
{
    /// <summary>"local", or the service's URL.</summary>
    string Name { get; }

    /// <summary>Runs started together at most; the rest wait.</summary>
    int Concurrency { get; }

    /// <summary>Whether this executor can run <paramref name="language"/> (a name or alias such as py, cs).</summary>
    bool Supports(string language);

    Task<RunResult> RunAsync(CodeRun run, CancellationToken cancel = default);
}
