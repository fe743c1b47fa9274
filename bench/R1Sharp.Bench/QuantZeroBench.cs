using System.Diagnostics;
using System.Text.Json;
using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Generation;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// What quantization costs a trained `r1 zero` model: its held-out pass@1 (the same 200 problems × 4 samples, the same
/// sampling and seeds as `r1 zero`'s own evaluation, plus greedy) from the float32 folder and from the GGUF files
/// `r1 quantize` writes from it, run as they are (`--model FILE.gguf`'s loader). The tokenizer is the folder's: the
/// demo's byte-level tokenizer has no pre-tokenizer regex, which GGUF cannot name (the files carry qwen2's).
/// </summary>
public static class QuantZeroBench
{
    public static int Run(string[] args)
    {
        string modelDir = Arg(args, "--model") ?? "runs/zero/model";
        var types = (Arg(args, "--types") ?? "q4_k_m,q8_0,q4_0").Split(',');
        var o = new ZeroOptions { Seed = int.Parse(Arg(args, "--seed") ?? "1") };
        int rows = int.Parse(Arg(args, "--rows") ?? "16");
        set_num_threads(int.Parse(Arg(args, "--threads") ?? "1"));
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        Console.WriteLine($"{modelDir}: seed {o.Seed}, {o.EvalProblems} held-out problems × {o.EvalSamples} samples at temperature {o.EvalTemperature}, top-p {o.EvalTopP}; greedy; {rows} rows a batch; load {load}");

        var tokenizer = HfTokenizer.FromFolder(modelDir);
        int eos = tokenizer.EosTokenId ?? throw new InvalidOperationException("the folder's tokenizer has no eos_token");
        var heldOut = new AdditionTask(o.Digits).Sample(o.EvalProblems, o.Seed + 7, heldOut: true).Select(p => new PromptExample(p.Prompt, p.Answer)).ToList();
        var sampled = new SamplingOptions { Temperature = (float)o.EvalTemperature, TopP = (float)o.EvalTopP, MaxTokens = o.Grpo.MaxCompletionLength, Seed = o.Seed * 31L };
        var greedy = sampled with { Temperature = 0 };
        (double Sampled, double Greedy, double Seconds) Evaluate(CausalLM model)
        {
            var sw = Stopwatch.StartNew();
            double s = PassAtOne.Evaluate(model, tokenizer, heldOut, o.EvalSamples, sampled, R1ZeroTemplate.Format, [eos], maxRows: rows).PassAt1;
            double g = PassAtOne.Evaluate(model, tokenizer, heldOut, 1, greedy, R1ZeroTemplate.Format, [eos], maxRows: rows).PassAt1;
            return (s, g, sw.Elapsed.TotalSeconds);
        }

        var results = new List<object>();
        (double Sampled, double Greedy, double Seconds) reference;
        using (var f32 = ModelFolder.Load(modelDir, dtype: ScalarType.Float32)) reference = Evaluate(f32);
        Console.WriteLine($"{"float32 folder",-10} pass@1 {reference.Sampled:P1} (greedy {reference.Greedy:P1})   [{reference.Seconds:F0} s]");
        results.Add(new { type = "f32", pass_at_1 = reference.Sampled, greedy = reference.Greedy });
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-quant-zero-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var type in types)
            {
                string path = Path.Combine(dir, $"zero.{type}.gguf");
                GgufExport.Export(modelDir, path, GgufExport.ParseType(type), pre: "qwen2");
                string mix;
                using (var g = GgufFile.Open(path))
                    mix = string.Join(", ", g.Tensors.Where(t => t.Dims.Length == 2).GroupBy(t => t.Type).Select(x => $"{x.Count()} {x.Key}"));
                using var model = GgufModel.Load(path);
                var r = Evaluate(model);
                Console.WriteLine($"{type,-10} pass@1 {r.Sampled:P1} ({100 * (r.Sampled - reference.Sampled):+0.0;-0.0} points; greedy {r.Greedy:P1}, {100 * (r.Greedy - reference.Greedy):+0.0;-0.0})   matrices: {mix}; {new FileInfo(path).Length / 1e6:F2} MB   [{r.Seconds:F0} s]");
                results.Add(new { type, pass_at_1 = r.Sampled, greedy = r.Greedy, difference = r.Sampled - reference.Sampled, matrices = mix, bytes = new FileInfo(path).Length });
            }
        }
        finally { Directory.Delete(dir, true); }
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/quant-zero.json", JsonSerializer.Serialize(new { model = modelDir, seed = o.Seed, load_average = load, results }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
