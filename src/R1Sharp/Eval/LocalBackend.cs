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
/// Batching: the engine gives row r of a batch the seed Seed + r, so a batch is a run of consecutive samples of one
/// problem (their seeds are consecutive), up to <see cref="MaxBatch"/> rows; k samples of a problem fill a batch.
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
        foreach (var batch in Batches(jobs, MaxBatch))
        {
            cancel.ThrowIfCancellationRequested();
            var (prompt, opens) = Prompt(batch[0].UserTurn, settings.ForceThink);
            // Without --max-tokens, a sample may run to the end of the context, as an endpoint's default does.
            int fits = Model.Model.Config.MaxPositionEmbeddings - Model.Tokenizer.Encode(prompt).Count;
            if (settings.MaxTokens is null && fits < 1)
                throw new R1SharpException($"problem {batch[0].Problem.Id}: the prompt alone fills the model's context of {Model.Model.Config.MaxPositionEmbeddings} tokens");
            var options = settings.Sampling(fits) with { Seed = batch[0].Seed };
            var outs = Model.Generator.Generate(Enumerable.Repeat(prompt, batch.Count).ToArray(), options, opens);
            for (int i = 0; i < batch.Count; i++)
                onCompletion(batch[i], new BackendCompletion(outs[i].Text, outs[i].Reasoning, outs[i].Answer, outs[i].FinishReason, outs[i].TokenIds.Length));
        }
        return Task.CompletedTask;
    }

    /// <summary>Splits jobs into runs of the same problem with consecutive seeds, at most <paramref name="max"/> long.</summary>
    public static IEnumerable<List<SampleJob>> Batches(IReadOnlyList<SampleJob> jobs, int max)
    {
        var current = new List<SampleJob>();
        foreach (var j in jobs)
        {
            if (current.Count > 0 && (current.Count == max || j.ProblemIndex != current[^1].ProblemIndex || j.Seed != current[^1].Seed + 1))
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
