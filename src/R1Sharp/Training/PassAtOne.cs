using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Text;

namespace R1Sharp.Training;

/// <summary>One evaluated completion.</summary>
public sealed record EvalSample(string Prompt, string Reference, string Completion, bool Correct, int Tokens);

/// <summary>Held-out pass@1 estimated as in DeepSeek-R1 §3 (evaluation setup): k samples per problem, pass@1 = the mean
/// correctness over all of them (mean over problems of c_i/k).</summary>
public sealed record EvalResult(double PassAt1, double MeanLength, double FormatRate, int Problems, int K, IReadOnlyList<EvalSample> Samples);

public static class PassAtOne
{
    public static EvalResult Evaluate(CausalLM model, HfTokenizer tokenizer, IReadOnlyList<PromptExample> problems, int k,
        SamplingOptions sampling, Func<string, string> template, IReadOnlyCollection<int> eos, Func<string, string, bool>? equal = null,
        int maxRows = 256)
    {
        var engine = new GenerationEngine(model);
        var accuracy = AccuracyReward.Create(equal);
        var rows = new List<(PromptExample P, int Sample)>();
        foreach (var p in problems) for (int s = 0; s < k; s++) rows.Add((p, s));
        var samples = new List<EvalSample>(rows.Count);
        for (int start = 0; start < rows.Count; start += maxRows)
        {
            var chunk = rows.GetRange(start, Math.Min(maxRows, rows.Count - start));
            var ids = chunk.Select(r => (IReadOnlyList<int>)tokenizer.Encode(template(r.P.Prompt))).ToList();
            // Seeds depend on the row's place in the whole evaluation, so chunking does not change the samples.
            var outs = engine.Generate(ids, sampling with { Seed = (sampling.Seed ?? 0) + start }, eos);
            for (int i = 0; i < chunk.Count; i++)
            {
                string text = tokenizer.Decode(outs[i].TokenIds.Where(t => !eos.Contains(t)));
                bool ok = accuracy.Score(chunk[i].P.Prompt, text, chunk[i].P.Answer) > 0;
                samples.Add(new EvalSample(chunk[i].P.Prompt, chunk[i].P.Answer, text, ok, outs[i].TokenIds.Length));
            }
        }
        return new EvalResult(samples.Average(s => s.Correct ? 1.0 : 0.0), samples.Average(s => s.Tokens),
            samples.Average(s => FormatReward.IsWellFormed(s.Completion) ? 1.0 : 0.0), problems.Count, k, samples);
    }
}
