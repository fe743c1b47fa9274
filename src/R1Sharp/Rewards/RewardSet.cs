using System.Diagnostics;

namespace R1Sharp.Rewards;

/// <summary>Scores of one batch: per reward function (unweighted) and the weighted total per completion.</summary>
public sealed record RewardScores(IReadOnlyDictionary<string, double[]> PerFunction, double[] Total, int Failures);

/// <summary>
/// Reward functions composed with weights. A reward that throws, returns NaN/∞ or takes longer than the timeout
/// scores 0 for that completion and is reported through <see cref="OnFailure"/>; it never stops the run.
/// </summary>
/// <remarks>
/// Each function scores the whole batch on one background thread (one thread start per function per batch, so fast
/// rewards stay cheap) while the caller waits with a per-completion deadline. A call past the deadline is abandoned:
/// .NET cannot abort a thread, so it keeps running in the background, its late result is discarded, and the rest of
/// the batch goes on in a fresh thread. After <see cref="MaxAbandonedCalls"/> abandoned calls a function is disabled
/// for the rest of the run (it scores 0), so runaway calls cannot pile up without bound.
/// </remarks>
public sealed class RewardSet
{
    public IReadOnlyList<RewardFunction> Functions { get; }
    public TimeSpan Timeout { get; }
    public int MaxAbandonedCalls { get; }
    public Action<string>? OnFailure { get; set; }

    readonly Dictionary<string, int> _abandoned = new();

    public RewardSet(IReadOnlyList<RewardFunction> functions, TimeSpan? timeout = null, int maxAbandonedCalls = 3)
    {
        if (functions.Count == 0) throw new R1SharpException("at least one reward function is needed");
        if (maxAbandonedCalls < 1) throw new R1SharpException($"maxAbandonedCalls must be ≥ 1, got {maxAbandonedCalls}");
        Functions = functions;
        Timeout = timeout ?? TimeSpan.FromSeconds(5);
        MaxAbandonedCalls = maxAbandonedCalls;
        foreach (var f in functions) _abandoned[f.Name] = 0;
    }

    /// <summary>Calls of a function that timed out and were left running.</summary>
    public int AbandonedCalls(string function) => _abandoned[function];

    public bool IsDisabled(string function) => _abandoned[function] >= MaxAbandonedCalls;

    public RewardScores Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<string> references)
    {
        int n = completions.Count;
        var per = new Dictionary<string, double[]>();
        var total = new double[n];
        int failures = 0;
        foreach (var f in Functions)
        {
            var scores = ScoreBatch(f, prompts, completions, references, ref failures);
            per[f.Name] = scores;
            for (int i = 0; i < n; i++) total[i] += f.Weight * scores[i];
        }
        return new RewardScores(per, total, failures);
    }

    double[] ScoreBatch(RewardFunction f, IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<string> references, ref int failures)
    {
        if (f.Batch is not null) return ScoreWhole(f, prompts, completions, references, ref failures);
        int n = completions.Count;
        var scores = new double[n];
        int next = 0;
        while (next < n)
        {
            if (IsDisabled(f.Name)) { failures += n - next; break; } // scores stay 0; the disabling was logged once
            var run = new BatchRun(f, prompts, completions, references, next);
            int hung = run.Wait(Timeout);
            for (int i = next; i < (hung < 0 ? n : hung); i++)
            {
                if (run.Errors[i] is { } error) { failures++; OnFailure?.Invoke($"reward {f.Name} {error}: scored 0"); }
                else scores[i] = run.Scores[i];
            }
            if (hung < 0) break;
            failures++;
            int abandoned = ++_abandoned[f.Name];
            OnFailure?.Invoke($"reward {f.Name} did not return within {Timeout.TotalSeconds:0.###}s: scored 0; the call is abandoned and may still be running ({abandoned} of {MaxAbandonedCalls} allowed)");
            if (IsDisabled(f.Name))
                OnFailure?.Invoke($"reward {f.Name} disabled for the rest of the run: {abandoned} calls timed out; it scores 0 from now on");
            next = hung + 1;
        }
        return scores;
    }

    /// <summary>A batch reward: the whole batch in one call on a background thread, with the deadline the one-by-one
    /// path would have had (the timeout per completion, times the batch). Past it, or if it throws, the batch scores 0.</summary>
    double[] ScoreWhole(RewardFunction f, IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<string> references, ref int failures)
    {
        int n = completions.Count;
        var scores = new double[n];
        if (n == 0) return scores;
        if (IsDisabled(f.Name)) { failures += n; return scores; }
        var run = Task.Factory.StartNew(() => f.Batch!(prompts, completions, references), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        bool done;
        try { done = run.Wait(Timeout * n); }
        catch (AggregateException e)
        {
            var inner = e.InnerException ?? e;
            failures += n;
            OnFailure?.Invoke($"reward {f.Name} threw {inner.GetType().Name}: {inner.Message}: the batch scored 0");
            return scores;
        }
        if (!done)
        {
            failures += n;
            int abandoned = ++_abandoned[f.Name];
            OnFailure?.Invoke($"reward {f.Name} did not score its batch of {n} within {(Timeout * n).TotalSeconds:0.###}s: scored 0; the call is abandoned and may still be running ({abandoned} of {MaxAbandonedCalls} allowed)");
            if (IsDisabled(f.Name)) OnFailure?.Invoke($"reward {f.Name} disabled for the rest of the run: {abandoned} calls timed out; it scores 0 from now on");
            return scores;
        }
        var result = run.Result;
        if (result.Length != n) { failures += n; OnFailure?.Invoke($"reward {f.Name} returned {result.Length} scores for {n} completions: scored 0"); return scores; }
        for (int i = 0; i < n; i++)
        {
            if (double.IsFinite(result[i])) scores[i] = result[i];
            else { failures++; OnFailure?.Invoke($"reward {f.Name} returned {result[i]}: scored 0"); }
        }
        return scores;
    }

    /// <summary>One function over completions [start, n) on a background thread, in order; the caller waits with a
    /// deadline per completion and may abandon it.</summary>
    sealed class BatchRun
    {
        public readonly double[] Scores;
        public readonly string?[] Errors;
        readonly int _end;
        int _current;                // the completion being scored; == _end when finished
        long _startedAt;             // Stopwatch timestamp at which _current started
        bool _abandoned;

        public BatchRun(RewardFunction f, IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<string> references, int start)
        {
            _end = completions.Count;
            Scores = new double[_end];
            Errors = new string?[_end];
            _current = start;
            _startedAt = Stopwatch.GetTimestamp();
            var thread = new Thread(() =>
            {
                for (int i = start; i < _end; i++)
                {
                    double s = 0;
                    string? error = null;
                    try
                    {
                        s = f.Score(prompts[i], completions[i], references[i]);
                        if (!double.IsFinite(s)) error = $"returned {s}";
                    }
                    catch (Exception e) { error = $"threw {e.GetType().Name}: {e.Message}"; }
                    lock (this)
                    {
                        if (_abandoned) return;
                        Scores[i] = s; Errors[i] = error;
                        _current = i + 1;
                        _startedAt = Stopwatch.GetTimestamp();
                        Monitor.PulseAll(this);
                    }
                }
            }) { IsBackground = true, Name = "reward " + f.Name };
            thread.Start();
        }

        /// <summary>-1 when every completion is scored; otherwise the index of the completion that overran the
        /// timeout (the run is then abandoned: later results are dropped).</summary>
        public int Wait(TimeSpan timeout)
        {
            lock (this)
            {
                while (_current < _end)
                {
                    var left = timeout - Stopwatch.GetElapsedTime(_startedAt);
                    if (left <= TimeSpan.Zero) { _abandoned = true; return _current; }
                    Monitor.Wait(this, left);
                }
                return -1;
            }
        }
    }
}
