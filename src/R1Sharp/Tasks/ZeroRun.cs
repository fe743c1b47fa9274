using System.Diagnostics;
using R1Sharp.Code;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Text;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tasks;

/// <summary>What `r1 zero` reports.</summary>
public sealed record ZeroSummary(double BasePassAt1, double FinalPassAt1, double BaseMeanLength, double FinalMeanLength,
    double BaseFormatRate, double FinalFormatRate, int Problems, int K, double PretrainSeconds, double GrpoSeconds,
    double TotalSeconds, double CpuSeconds, double LoadAverage, string OutputDir, string ModelDir);

/// <summary>
/// R1-Zero end to end on a CPU: make a tokenizer, pre-train a tiny base model from scratch on an addition corpus in
/// which only some solutions show their steps, measure its held-out pass@1, run GRPO with accuracy + format rewards
/// from the R1-Zero template, and measure again.
/// </summary>
public sealed class ZeroRun
{
    public ZeroOptions Options { get; }
    /// <summary>(phase, done, total) for progress displays.</summary>
    public Action<string, int, int>? OnProgress { get; set; }
    public Action<string>? OnLog { get; set; }
    public Action<Dictionary<string, double>>? OnGrpoStep { get; set; }

    public ZeroRun(ZeroOptions options) => Options = options;

    public ZeroSummary Run()
    {
        var o = Options;
        var total = Stopwatch.StartNew();
        set_num_threads(o.Threads);
        string outDir = Path.GetFullPath(o.OutputDir);
        // The code task's programs run in the local sandbox (namespaces; refused where they are unavailable).
        using var code = o.Task == "code" ? new LocalSandbox(new LocalSandboxOptions { Limits = new SandboxLimits { CpuSeconds = 2, WallSeconds = 10, MemoryBytes = 256L << 20 } }) : null;
        var task = CreateTask(code);
        var pre = Stopwatch.StartNew();
        var (model, tokenizer, tokDir) = PretrainBase(outDir, task);
        using var _ = model;
        double pretrainSeconds = pre.Elapsed.TotalSeconds;

        var heldOut = HeldOutProblems(task).Select(p => new PromptExample(p.Prompt, p.Answer)).ToList();
        var before = Evaluate(model, tokenizer, heldOut, "evaluate base", task);

        var config = o.Grpo;
        if (o.Arch == "deepseek_v3") { config.AuxLossAlpha = 1e-4; config.BiasUpdateSpeed = 1e-3; }
        config.OutputDir = Path.Combine(outDir, "grpo");
        config.Seed = o.Seed;
        config.NumThreads = o.Threads;
        var prompts = TrainProblems(task).Select(p => new PromptExample(p.Prompt, p.Answer)).ToList();
        (config.RewardFuncs, config.RewardWeights) = task.Rewards;
        var rewards = new RewardSet(RewardRegistry.Build(config, code: code));
        WritePrompts(outDir, task);
        var rl = Stopwatch.StartNew();
        using (var trainer = new GrpoTrainer(config, model, tokenizer, rewards, prompts, R1ZeroTemplate.Format, tokDir))
        {
            trainer.OnLog = OnLog;
            if (o.Resume && trainer.Resume()) OnLog?.Invoke($"GRPO resumed at step {trainer.State.Step}");
            trainer.Train(onStep: row =>
            {
                OnGrpoStep?.Invoke(row);
                OnProgress?.Invoke("GRPO", trainer.State.Step, config.MaxSteps);
            });
        }
        double grpoSeconds = rl.Elapsed.TotalSeconds;

        var after = Evaluate(model, tokenizer, heldOut, "evaluate after RL", task);
        // With use_peft: the adapter in PEFT's layout, and the model folder with it merged in.
        if (model.Lora is { } lora)
        {
            lora.Save(Path.Combine(outDir, "adapter"), baseModel: Path.Combine(outDir, "base"));
            lora.MergeAndUnload();
        }
        string modelDir = Path.Combine(outDir, "model");
        ModelFolder.Save(model, modelDir, tokDir);
        var summary = new ZeroSummary(before.PassAt1, after.PassAt1, before.MeanLength, after.MeanLength, before.FormatRate,
            after.FormatRate, heldOut.Count, o.EvalSamples, pretrainSeconds, grpoSeconds, total.Elapsed.TotalSeconds,
            // CPU time and load say how much of the wall time was this run's work on a shared machine.
            Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds, LoadAverage(), outDir, modelDir);
        ZeroReport.Write(outDir, summary, before, after, MetricsLog.Read(Path.Combine(config.OutputDir, "metrics.jsonl")), o);
        return summary;
    }

    /// <summary>The demo's base model from scratch: its tokenizer written to outDir/tokenizer, a tiny model of the
    /// options' size pre-trained on the addition corpus, saved to outDir/base. `r1 zero`'s first half, and the students
    /// of `r1 distill`, "pre-trained the same way".</summary>
    public (CausalLM Model, HfTokenizer Tokenizer, string TokenizerDir) PretrainBase(string outDir, IZeroTask? task = null)
    {
        var o = Options;
        set_num_threads(o.Threads);
        Directory.CreateDirectory(outDir);
        string tokDir = Path.Combine(outDir, "tokenizer");
        ZeroTokenizer.Write(tokDir);
        var tokenizer = HfTokenizer.FromFolder(tokDir);
        // --base: another run's base, so that runs comparing RL settings start from the very same weights.
        if (o.BaseModel is { } baseDir)
        {
            var loaded = ModelFolder.Load(baseDir);
            ModelFolder.Save(loaded, Path.Combine(outDir, "base"), tokDir);
            return (loaded, tokenizer, tokDir);
        }
        var model = CausalLM.Create(ModelConfig(tokenizer.VocabSize, tokenizer.EosTokenId!.Value));
        model.InitializeRandom(o.Seed);
        // DeepSeek-V3's pre-training terms (§4.2: balance α 1e-4, bias speed γ 1e-3, MTP weight λ 0.3); a dense
        // family has none. GRPO takes its own from the recipe (the MTP module is not trained in RL).
        model.AuxiliaryTraining = new AuxiliaryTrainingOptions(AuxLossAlpha: 1e-4, BiasUpdateSpeed: 1e-3, MtpLossWeight: 0.3);
        Pretrain(model, tokenizer, task ?? new AdditionTask(o.Digits), outDir, tokDir);
        ModelFolder.Save(model, Path.Combine(outDir, "base"), tokDir);
        return (model, tokenizer, tokDir);
    }

    /// <summary>The run's prompts as JSONL that `r1 train grpo`, `r1 sample` and `r1 eval` read (prompt and problem,
    /// answer, id): the GRPO prompts (train.jsonl) and the held-out problems (heldout.jsonl).</summary>
    public (string Train, string HeldOut) WritePrompts(string outDir, IZeroTask? task = null)
    {
        var o = Options;
        task ??= new AdditionTask(o.Digits);
        string Write(string name, IEnumerable<Problem> problems)
        {
            string path = Path.Combine(outDir, name);
            File.WriteAllLines(path + ".tmp", problems.Select((p, i) => System.Text.Json.JsonSerializer.Serialize(new { id = $"{name[..^6]}-{i}", prompt = p.Prompt, problem = p.Prompt, answer = p.Answer })));
            File.Move(path + ".tmp", path, overwrite: true);
            return path;
        }
        Directory.CreateDirectory(outDir);
        return (Write("train.jsonl", TrainProblems(task)), Write("heldout.jsonl", HeldOutProblems(task)));
    }

    /// <summary>The task of the options: addition, or code (whose programs run in <paramref name="code"/>).</summary>
    IZeroTask CreateTask(ICodeExecutor? code) => Options.Task switch
    {
        "addition" => new AdditionTask(Options.Digits),
        "code" => new CodeTask(Options.Digits, code!),
        _ => throw new R1SharpException($"--task \"{Options.Task}\" is unknown (expected addition or code)"),
    };

    List<Problem> TrainProblems(IZeroTask task) => task.Sample(Options.RlPrompts, Options.Seed + 3, heldOut: false);
    List<Problem> HeldOutProblems(IZeroTask task) => task.Sample(Options.EvalProblems, Options.Seed + 7, heldOut: true);

    static double LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return double.NaN; }
    }

    ModelConfig ModelConfig(int vocab, int eos)
    {
        var o = Options;
        if (o.Arch == "deepseek_v3")
        {
            int head = o.HiddenSize / o.Heads;
            return DeepseekV3Config.Preset("tiny", vocab) with
            {
                EosTokenIds = [eos], HiddenSize = o.HiddenSize, NumHiddenLayers = o.Layers, NumAttentionHeads = o.Heads, NumKeyValueHeads = o.Heads,
                QLoraRank = o.HiddenSize / 2, KvLoraRank = o.HiddenSize / 2, QkNopeHeadDim = head, QkRopeHeadDim = head / 2, VHeadDim = head,
                IntermediateSize = o.IntermediateSize, MoeIntermediateSize = o.IntermediateSize / 4, NRoutedExperts = 8, NSharedExperts = 1,
                NumExpertsPerTok = 2, NGroup = 4, TopkGroup = 2, FirstKDenseReplace = 1, NumNextnPredictLayers = 1,
                MaxPositionEmbeddings = 512, RopeScaling = null,
            };
        }
        if (o.Arch != "qwen2") throw new R1SharpException($"r1 zero: --arch \"{o.Arch}\" is not supported (expected qwen2 or deepseek_v3)");
        return Qwen2Config.Preset("tiny", vocab) with
        {
            EosTokenIds = [eos],
            HiddenSize = o.HiddenSize, NumHiddenLayers = o.Layers, NumAttentionHeads = o.Heads, NumKeyValueHeads = o.KvHeads,
            HeadDim = o.HiddenSize / o.Heads, IntermediateSize = o.IntermediateSize, MaxPositionEmbeddings = 512,
        };
    }

    void Pretrain(CausalLM model, HfTokenizer tokenizer, IZeroTask task, string outDir, string tokDir)
    {
        var o = Options;
        // The corpus: fresh training-side problems every step; a problem shows its steps with probability StepsFraction.
        IReadOnlyList<(int[], int[])> Batch(int step)
        {
            var rng = new Random(o.Seed * 7919 + step);
            var problems = task.Sample(o.Pretrain.BatchSize, o.Seed * 100_003 + step, heldOut: false);
            return problems.Select(p => (tokenizer.Encode(R1ZeroTemplate.Format(p.Prompt)).ToArray(),
                tokenizer.Encode(Completion(p, rng.NextDouble() < o.StepsFraction)).Append(tokenizer.EosTokenId!.Value).ToArray())).ToList();
            // Addition's answer-only solutions are round estimates or exact (DirectAnswers); other tasks have one form.
            string Completion(Problem p, bool steps) =>
                task.Completion(p, steps, estimate: o.DirectAnswers == "estimate");
        }
        // With Resume, checkpoints every 100 steps: an interrupted pipeline stage continues (bit-identically).
        var trainer = new Pretrainer(model, o.Pretrain with { SaveSteps = o.Resume ? 100 : 0 }, Batch, Path.Combine(outDir, "pretrain"), tokDir);
        if (o.Resume && trainer.Resume()) OnLog?.Invoke($"pre-training resumed at step {trainer.State.Step}");
        TrainingLoop.Run(trainer, row =>
        {
            int step = trainer.State.Step;
            OnProgress?.Invoke("pre-train base", step, o.Pretrain.Steps);
            if (step % 10 == 0) OnLog?.Invoke($"pre-train step {step}: loss {row["loss"]:F4} ({DateTime.Now:HH:mm:ss})");
        });
    }

    EvalResult Evaluate(CausalLM model, HfTokenizer tokenizer, List<PromptExample> heldOut, string phase, IZeroTask task)
    {
        OnProgress?.Invoke(phase, 0, 1);
        var sampling = new SamplingOptions
        {
            Temperature = (float)Options.EvalTemperature, TopP = (float)Options.EvalTopP, MaxTokens = Options.Grpo.MaxCompletionLength,
            Seed = Options.Seed * 31L,
        };
        var r = PassAtOne.Evaluate(model, tokenizer, heldOut, Options.EvalSamples, sampling, R1ZeroTemplate.Format, [tokenizer.EosTokenId!.Value], task.Equal);
        OnProgress?.Invoke(phase, 1, 1);
        // The two ways to answer the base corpus taught: with column steps in <think>, or straight away.
        var steps = r.Samples.Where(s => task.ShowsSteps(s.Completion)).ToList();
        var direct = r.Samples.Where(s => !task.ShowsSteps(s.Completion)).ToList();
        OnLog?.Invoke($"{phase}: pass@1 {r.PassAt1:P1}, mean length {r.MeanLength:F1} tokens, format {r.FormatRate:P0}; " +
            $"shows steps in {steps.Count / (double)r.Samples.Count:P0} (accuracy {(steps.Count == 0 ? 0 : steps.Average(s => s.Correct ? 1.0 : 0)):P0}), " +
            $"direct accuracy {(direct.Count == 0 ? 0 : direct.Average(s => s.Correct ? 1.0 : 0)):P0}");
        return r;
    }
}
