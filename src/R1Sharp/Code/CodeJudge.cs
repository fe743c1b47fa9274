namespace R1Sharp.Code;

/// <summary>What a completion's program did against a problem's tests: the verdict (of the first failing test, else
/// passed), how many tests passed of how many, why it failed, and the program that ran.</summary>
public sealed record CodeJudgement(CodeVerdict Verdict, int Passed, int Total, string? Detail, string? Program, string? Language)
{
    public bool AllPassed => Verdict == CodeVerdict.Passed;
    public double PassRate => Total == 0 ? 0 : (double)Passed / Total;
    /// <summary>"passed", or the verdict and its reason in one line (results files, rollout logs).</summary>
    public string Reason => Detail is null ? Verdict.Name() : $"{Verdict.Name()}: {Detail}";
}

/// <summary>
/// Runs a completion against a problem's tests on an executor. A harness problem (HumanEval, MultiPL-E) is one run;
/// a stdin/stdout problem is one run per test case, started together (the executor bounds how many run at once), and
/// with <c>allCases</c> false the rest are cancelled as soon as one fails (accuracy needs only the first failure;
/// the pass rate needs them all).
/// </summary>
public static class CodeJudge
{
    public static async Task<CodeJudgement> JudgeAsync(ICodeExecutor executor, CodeSpec spec, string completion, bool chat, bool allCases = false,
        SandboxLimits? limits = null, CancellationToken cancel = default)
    {
        if (spec.Solution(completion, chat, executor.Supports) is not { } solution)
            return new CodeJudgement(CodeVerdict.Failed, 0, spec.TestCount, "no fenced code block in the answer", null, null);
        var (source, language) = solution;
        if (spec.Style != CodeTestStyle.Stdio)
        {
            var r = await executor.RunAsync(new CodeRun(language, source, spec.Harness, Limits: limits), cancel).ConfigureAwait(false);
            return new CodeJudgement(r.Verdict, r.Ok ? 1 : 0, 1, r.Ok ? null : r.Detail, source, language);
        }
        if (spec.Cases.Count == 0) throw new R1SharpException("a stdin/stdout problem without test cases");

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var outcomes = new (CodeVerdict Verdict, string? Detail)?[spec.Cases.Count];
        var runs = spec.Cases.Select(async (c, i) =>
        {
            RunResult r;
            try { r = await executor.RunAsync(new CodeRun(language, source, Stdin: c.Input, Limits: limits), stop.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancel.IsCancellationRequested) { return; }
            var outcome = !r.Ok ? (r.Verdict, $"test {i + 1}: {r.Detail}")
                : OutputMatch.Matches(r.Stdout, c.Output) ? (CodeVerdict.Passed, (string?)null)
                : (CodeVerdict.Failed, $"test {i + 1}: wrong answer: expected {Excerpt.Quote(c.Output.Trim(), 60)}, got {Excerpt.Quote(r.Stdout.Trim(), 60)}");
            outcomes[i] = outcome;
            if (outcome.Item1 != CodeVerdict.Passed && !allCases) stop.Cancel();
        }).ToArray();
        await Task.WhenAll(runs).ConfigureAwait(false);
        cancel.ThrowIfCancellationRequested();
        int passed = outcomes.Count(o => o is { Verdict: CodeVerdict.Passed });
        var firstFailure = outcomes.Select((o, i) => (o, i)).FirstOrDefault(x => x.o is { } v && v.Verdict != CodeVerdict.Passed);
        if (firstFailure.o is { } f) return new CodeJudgement(f.Verdict, passed, spec.Cases.Count, f.Detail, source, language);
        return new CodeJudgement(CodeVerdict.Passed, passed, spec.Cases.Count, null, source, language);
    }
}
