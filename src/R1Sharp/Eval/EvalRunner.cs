using R1Sharp.Code;
using R1Sharp.Verifier;

namespace R1Sharp.Eval;

/// <summary>Where a run stands: samples finished (including those found from an earlier run), of how many, how many
/// of the finished were correct, and how many were already there when the run began.</summary>
public sealed record EvalProgress(int Done, int Total, int Correct, int Resumed);

/// <summary>
/// The eval loop: work out which (problem, sample) pairs the results log does not hold yet for these settings, hand
/// exactly those to the backend, grade each completion with the verifier as it arrives and append it to the log.
/// Returns the graded samples of this evaluation (old and new), ready for <see cref="EvalSummary"/>.
/// </summary>
public static class EvalRunner
{
    /// <summary>Samples one run may ask for (MATH-500 at DeepSeek's k = 64 is 32,000).</summary>
    public const int MaxSamples = 10_000_000;

    /// <param name="code">where code problems' programs run (the local sandbox or a service); needed when any problem is code</param>
    public static async Task<IReadOnlyList<SampleRecord>> RunAsync(IReadOnlyList<BenchProblem> problems, int k, EvalSettings settings,
        IEvalBackend backend, ResultsLog log, Action<EvalProgress>? progress = null, CancellationToken cancel = default, ICodeExecutor? code = null)
    {
        if (k < 1) throw new R1SharpException($"--k must be ≥ 1, got {k}");
        if (code is null && problems.Any(p => p.Code is not null)) throw new R1SharpException("the benchmark has code problems: a sandbox is needed to run them");
        if (code is not null && problems.Select(p => p.Code?.Language).FirstOrDefault(l => l is not null && !code.Supports(l)) is { } unsupported)
            throw new R1SharpException($"language \"{unsupported}\" (in the benchmark) is not supported by the {code.Name} sandbox");
        // Every (problem, sample) pair is listed before the first request: --k 10⁹ never started, filling memory.
        if ((long)problems.Count * k > MaxSamples)
            throw new R1SharpException($"--k {k} × {problems.Count} problems is {(long)problems.Count * k:N0} samples, more than {MaxSamples:N0} in one run: lower --k or --limit");
        string key = settings.Key;
        var wanted = new HashSet<string>(problems.Select(p => p.Id));
        var done = new Dictionary<(string, int), SampleRecord>();
        foreach (var r in log.Records)
            if (r.Settings == key && wanted.Contains(r.ProblemId) && r.Sample < k) done[(r.ProblemId, r.Sample)] = r;

        var jobs = new List<SampleJob>();
        for (int p = 0; p < problems.Count; p++)
            for (int j = 0; j < k; j++)
                if (!done.ContainsKey((problems[p].Id, j)))
                    jobs.Add(new SampleJob(p, problems[p], j, settings.SeedFor(p, j), settings.UserTurn(problems[p].Problem)));

        int total = problems.Count * k, resumed = done.Count;
        int finished = resumed, correct = done.Values.Count(r => r.Correct);
        var gate = new object();
        progress?.Invoke(new EvalProgress(finished, total, correct, resumed));
        void Record(SampleRecord record, SampleJob job)
        {
            log.Append(record); // written and flushed before it counts as done
            lock (gate)
            {
                done[(job.Problem.Id, job.Sample)] = record;
                finished++;
                if (record.Correct) correct++;
                progress?.Invoke(new EvalProgress(finished, total, correct, resumed));
            }
        }
        // Code is graded by running it: concurrently (the executor bounds how many run at once), while generation goes on.
        var grading = new List<Task>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        await backend.RunAsync(jobs, settings, (job, completion) =>
        {
            if (job.Problem.Code is null) { Record(Grade(key, job, completion), job); return; }
            var task = Task.Run(async () => Record(await GradeCodeAsync(key, job, completion, code!, stop.Token).ConfigureAwait(false), job), stop.Token);
            lock (grading) grading.Add(task);
        }, cancel);
        Task[] pending;
        lock (grading) pending = grading.ToArray();
        try { await Task.WhenAll(pending).ConfigureAwait(false); }
        catch { stop.Cancel(); throw; }

        return problems.SelectMany(p => Enumerable.Range(0, k).Select(j => done.GetValueOrDefault((p.Id, j))))
            .Where(r => r is not null).Select(r => r!).ToList();
    }

    /// <summary>A code sample: a base model's completion continues the prompt; a chat answer gives its last fenced block
    /// (after the reasoning; a completion that never closed its reasoning has no answer). Extracted holds the program
    /// that ran; the reason is the verdict and why.</summary>
    public static async Task<SampleRecord> GradeCodeAsync(string settingsKey, SampleJob job, BackendCompletion c, ICodeExecutor executor, CancellationToken cancel = default)
    {
        var spec = job.Problem.Code!;
        var j = await CodeJudge.JudgeAsync(executor, spec, c.Continuation ? c.Text : c.Answer, chat: !c.Continuation, cancel: cancel).ConfigureAwait(false);
        return new SampleRecord
        {
            Settings = settingsKey, ProblemId = job.Problem.Id, Sample = job.Sample, Seed = job.Seed, Gold = job.Problem.Answer,
            Extracted = j.Program, Correct = j.AllPassed, Reason = j.Reason,
            FinishReason = c.FinishReason, CompletionTokens = c.CompletionTokens, Reasoning = c.Reasoning, Answer = c.Answer, Text = c.Text,
        };
    }

    /// <summary>The verdict is on the answer part only: reasoning may try several values before settling.</summary>
    public static SampleRecord Grade(string settingsKey, SampleJob job, BackendCompletion c)
    {
        var verdict = MathVerifier.Verify(job.Problem.Answer, c.Answer);
        return new SampleRecord
        {
            Settings = settingsKey, ProblemId = job.Problem.Id, Sample = job.Sample, Seed = job.Seed, Gold = job.Problem.Answer,
            Extracted = AnswerExtractor.Extract(c.Answer) is { Length: > 0 } x ? x : null, Correct = verdict.Equal, Reason = verdict.Reason,
            FinishReason = c.FinishReason, CompletionTokens = c.CompletionTokens, Reasoning = c.Reasoning, Answer = c.Answer, Text = c.Text,
        };
    }
}
