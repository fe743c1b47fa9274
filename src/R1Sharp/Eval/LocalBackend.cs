using R1Sharp.Generation;
using R1Sharp.Text;

namespace R1Sharp.Eval;

/// <summary>
/// Samples from a model loaded in this process through the batched generation engine.
/// Prompt: the chat template's rendering of the single user turn with the generation prompt. DeepSeek's protocol has
/// the assistant turn open with "&lt;think&gt;\n"; R1's templates (and its distills') do that themselves, and for a
/// template that does not (Qwen3, Llama, most base models) we append it when <see cref="EvalSettings.ForceThink"/> is
/// on (the default), so every model is asked the same way. A folder without a chat template gets the user turn as
/// plain text and nothing appended: there is no assistant turn to open.
/// Batching: each row samples with its job's own seed, so a sample is the same whichever batch it lands in; a batch is
/// up to <see cref="MaxBatch"/> consecutive jobs, across problems when the completion budget is fixed (MaxTokens), or
/// within one problem when it is what the context leaves after that problem's prompt.
/// </summary>
public sealed class LocalBackend(LocalModel model, int maxBatch = 8, bool ownsModel = true) : IEvalBackend
{
    public LocalModel Model { get; } = model;
    public int MaxBatch { get; } = Math.Max(1, maxBatch);
    public string ModelName => Path.GetFileName(Path.GetFullPath(Model.Folder).TrimEnd('/'))
        + (Model.Adapter is { } a ? "+" + Path.GetFileName(Path.GetFullPath(a).TrimEnd('/')) : "");

    public (string Prompt, bool OpensThink) Prompt(string userTurn, bool forceThink)
    {
        var (prompt, opens) = Model.RenderChat([new ChatMessage("user", userTurn)]);
        if (forceThink && !opens && Model.Template is not null) return (prompt + ReasoningSplit.Open + "\n", true);
        return (prompt, opens);
    }

    public Task RunAsync(IReadOnlyList<SampleJob> jobs, EvalSettings settings, Action<SampleJob, BackendCompletion> onCompletion, CancellationToken cancel)
    {
        var prompts = new Dictionary<int, (int[] Ids, bool Opens)>();
        (int[] Ids, bool Opens) PromptOf(SampleJob j)
        {
            if (!prompts.TryGetValue(j.ProblemIndex, out var p))
            {
                // Base-model style: the problem's own prompt continued as plain text (HumanEval's signature and
                // docstring), cut at its stop tokens; chat style: the user turn through the chat template.
                var code = j.Problem.Code;
                var (text, opens) = settings.Completion ? (code is { Prompt.Length: > 0 } ? code.Prompt : j.Problem.Problem, false)
                    : Prompt(j.UserTurn, settings.ForceThink);
                prompts[j.ProblemIndex] = p = (Model.Tokenizer.Encode(text).ToArray(), opens);
            }
            return p;
        }
        foreach (var batch in Batches(jobs, MaxBatch, acrossProblems: settings.MaxTokens is not null))
        {
            cancel.ThrowIfCancellationRequested();
            // Rows of one generate call share the think prefix and the stop strings (a code problem's own stop tokens
            // in completion mode).
            IReadOnlyList<string> StopsOf(SampleJob j) => settings.Completion && j.Problem.Code is { StopTokens.Count: > 0 } c ? c.StopTokens : [];
            foreach (var group in batch.GroupBy(j => (PromptOf(j).Opens, Stops: string.Join("\u0000", StopsOf(j)))))
            {
                var rows = group.ToList();
                // Without --max-tokens, a sample may run to the end of the context, as an endpoint's default does.
                int fits = Model.Model.Config.MaxPositionEmbeddings - rows.Max(j => PromptOf(j).Ids.Length);
                if (settings.MaxTokens is null && fits < 1)
                    throw new R1SharpException($"problem {rows[0].Problem.Id}: the prompt alone fills the model's context of {Model.Model.Config.MaxPositionEmbeddings} tokens");
                var options = settings.Sampling(fits);
                var stops = StopsOf(rows[0]);
                if (stops.Count > 0) options = options with { Stop = [.. options.Stop, .. stops] };
                var outs = Model.Generator.GenerateFromIds(rows.Select(j => (IReadOnlyList<int>)PromptOf(j).Ids).ToList(), options,
                    group.Key.Opens, seeds: rows.Select(j => j.Seed).ToList());
                for (int i = 0; i < rows.Count; i++)
                    onCompletion(rows[i], settings.Completion
                        ? new BackendCompletion(outs[i].Text, null, outs[i].Text, outs[i].FinishReason, outs[i].TokenIds.Length, Continuation: true)
                        : new BackendCompletion(outs[i].Text, outs[i].Reasoning, outs[i].Answer, outs[i].FinishReason, outs[i].TokenIds.Length));
            }
            // A bounded cache: a prompt dropped here is rendered again if a later job needs it.
            if (prompts.Count > 4 * MaxBatch) prompts.Clear();
        }
        return Task.CompletedTask;
    }

    /// <summary>Splits jobs into runs of at most <paramref name="max"/>, each within one problem unless
    /// <paramref name="acrossProblems"/>.</summary>
    public static IEnumerable<List<SampleJob>> Batches(IReadOnlyList<SampleJob> jobs, int max, bool acrossProblems = false)
    {
        var current = new List<SampleJob>();
        foreach (var j in jobs)
        {
            if (current.Count > 0 && (current.Count == max || (!acrossProblems && j.ProblemIndex != current[^1].ProblemIndex)))
            {
                yield return current;
                current = [];
            }
            current.Add(j);
        }
        if (current.Count > 0) yield return current;
    }

    public void Dispose() { if (ownsModel) Model.Dispose(); }
}
