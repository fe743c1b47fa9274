using System.Diagnostics;
using R1Sharp.Eval;
using R1Sharp.Generation;
using R1Sharp.Tasks;
using R1Sharp.Training.Distill;
using R1Sharp.Training.Sampling;
using R1Sharp.Training.Sft;

namespace R1Sharp.Training.Pipeline;

/// <summary>
/// Runs a <see cref="PipelineRecipe"/>: its stages in order into one run folder, a subfolder per stage, each followed by
/// the held-out evaluation of the model it produced, and the report (report.md, pass_at_1.png) rewritten after each.
/// Resumable at two levels: a stage whose stage.json exists is done and skipped (unless its recipe text changed:
/// then an error), and an interrupted stage continues where its own machinery left it — trainers (the embedded
/// task's pre-training included) from their newest checkpoint, bit-identically; sampling and evaluation from their
/// append-only samples logs.
/// </summary>
public sealed class PipelineRunner(PipelineRecipe recipe)
{
    public PipelineRecipe Recipe { get; } = recipe;
    public Action<string>? OnLog { get; set; }
    /// <summary>A training stage's trainer is built (and resumed): progress totals.</summary>
    public Action<PipelineStage, ITrainer>? OnTrainStart { get; set; }
    public Action<PipelineStage, ITrainer, Dictionary<string, double>>? OnStep { get; set; }
    /// <summary>Sampling and evaluation progress: (what, progress).</summary>
    public Action<string, EvalProgress>? OnSamples { get; set; }

    readonly Dictionary<string, StageRecord> _done = new();

    public IReadOnlyList<StageRecord> Run(bool resume)
    {
        string root = Recipe.OutputDir;
        if (!resume && Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
            throw new R1SharpException($"{root}: the output_dir already holds a run; --resume continues it (or choose another output_dir)");
        // Before anything runs: no stage that has run (or started) may have been edited since.
        foreach (var stage in Recipe.Stages) CheckUnchanged(stage.Name, stage.Fingerprint, stage.Line);
        Directory.CreateDirectory(root);
        WriteAtomic(Path.Combine(root, "recipe.yaml"), Recipe.Text);
        var records = new List<StageRecord>();
        if (Recipe.BaseModel != null && Recipe.Eval != null) records.Add(RunOne("base", "base", "", () => new Produced(Recipe.BaseModel, null, 0, 0)));
        foreach (var stage in Recipe.Stages)
            records.Add(RunOne(stage.Name, stage.Kind, stage.Fingerprint, () => RunStage(stage), stage));
        PipelineReport.Write(root, Recipe, records, OnLog);
        return records;
    }

    sealed record Produced(string? Model, string? Dataset, int Steps, double TrainSeconds);

    /// <summary>A finished stage (stage.json) or a started one (.fingerprint: its checkpoints belong to the recipe it
    /// started from) whose recipe text differs from this recipe's is an error, not something to reuse.</summary>
    void CheckUnchanged(string name, string fingerprint, int line)
    {
        string dir = Path.Combine(Recipe.OutputDir, name);
        string? ran = StageRecord.TryLoad(dir)?.Fingerprint
            ?? (File.Exists(Path.Combine(dir, ".fingerprint")) ? File.ReadAllText(Path.Combine(dir, ".fingerprint")).Trim() : null);
        if (ran != null && ran != fingerprint)
            throw new R1SharpException($"{Recipe.Source}:{line}: stage \"{name}\" changed since it ran in {dir}; delete that folder to run it again, or restore the recipe");
    }

    StageRecord RunOne(string name, string kind, string fingerprint, Func<Produced> run, PipelineStage? stage = null)
    {
        string dir = Path.Combine(Recipe.OutputDir, name);
        CheckUnchanged(name, fingerprint, stage?.Line ?? 1);
        if (StageRecord.TryLoad(dir) is { } existing)
        {
            OnLog?.Invoke($"stage {name}: done earlier ({Describe(existing)})");
            return _done[name] = existing;
        }
        Directory.CreateDirectory(dir);
        WriteAtomic(Path.Combine(dir, ".fingerprint"), fingerprint);
        OnLog?.Invoke($"stage {name} ({kind}): start");
        var clock = Stopwatch.StartNew();
        var produced = run();
        StageEval? eval = null;
        if (produced.Model != null && Recipe.Eval is { } o)
        {
            string problems = ResolveInput(Recipe.EvalInput!.Values[0], dataset: true);
            if (!File.Exists(problems)) throw new R1SharpException($"{Recipe.Source}:{Recipe.EvalInput.Line}: the held-out problems {problems} do not exist when stage \"{name}\" is evaluated");
            eval = PipelineEval.Run(produced.Model, Path.Combine(dir, "eval"), o, problems, p => OnSamples?.Invoke($"eval {name}", p));
        }
        var record = new StageRecord(name, kind, fingerprint, Relative(produced.Model), Relative(produced.Dataset), produced.Steps,
            produced.TrainSeconds, clock.Elapsed.TotalSeconds, eval, LoadAverage());
        record.Save(dir);
        OnLog?.Invoke($"stage {name}: done ({Describe(record)})");
        _done[name] = record;
        PipelineReport.Write(Recipe.OutputDir, Recipe, _done.Values.ToList(), OnLog);
        return record;
    }

    static string Describe(StageRecord r) =>
        (r.Eval is { } e ? $"held-out pass@1 {100 * e.Pass1:F1} ± {100 * e.Pass1StdErr:F1}, mean {e.MeanTokens:F1} tokens; " : "") +
        $"{r.Steps} steps, {r.TrainSeconds:F0} s training, {r.WallSeconds:F0} s in all";

    Produced RunStage(PipelineStage stage)
    {
        string dir = Path.Combine(Recipe.OutputDir, stage.Name);
        string where = $"{Recipe.Source}:{stage.Line}";
        string Input(string key, bool dataset) => ResolveInput(stage.Inputs.TryGetValue(key, out var i) ? i.Values[0]
            : throw new R1SharpException($"{where}: stage \"{stage.Name}\" needs {key}"), dataset);
        var hooks = Hooks(stage);
        switch (stage.Options)
        {
            case SftConfig sft:
            {
                sft.ModelNameOrPath = Input("model_name_or_path", false);
                sft.OutputDir = dir;
                var datasets = stage.Inputs.TryGetValue("dataset_path", out var d) ? d.Values.Select(v => ResolveInput(v, true)).ToList()
                    : throw new R1SharpException($"{where}: stage \"{stage.Name}\" needs dataset_path");
                sft.DatasetPath = datasets[0];
                if (stage.Inputs.ContainsKey("eval_dataset_path")) sft.EvalDatasetPath = Input("eval_dataset_path", true);
                return Trained(SftRun.Run(sft, where, resume: true, hooks, datasets));
            }
            case GrpoConfig grpo:
                grpo.ModelNameOrPath = Input("model_name_or_path", false);
                grpo.DatasetPath = Input("dataset_path", true);
                grpo.OutputDir = dir;
                return Trained(GrpoRun.Run(grpo, where, resume: true, hooks));
            case DistillConfig distill:
                distill.ModelNameOrPath = Input("model_name_or_path", false);
                distill.TeacherModelNameOrPath = Input("teacher_model_name_or_path", false);
                distill.DatasetPath = Input("dataset_path", true);
                distill.OutputDir = dir;
                return Trained(OnPolicyDistillRun.Run(distill, where, resume: true, hooks));
            case SampleOptions sample:
                return Sample(stage, sample, dir, Input("dataset_path", true),
                    sample.Endpoint.Length > 0 ? null : Input("model_name_or_path", false), where);
            case ZeroStageOptions zero when stage.Kind == "zero":
            {
                var run = new ZeroRun(zero.ToOptions(dir))
                {
                    OnLog = OnLog,
                    OnGrpoStep = row => OnLog?.Invoke($"{stage.Name} GRPO step {row["step"]}: reward {row["reward"]:F3}, accuracy {row.GetValueOrDefault("accuracy"):F3}, length {row["completions/mean_length"]:F1}"),
                };
                var s = run.Run();
                return new Produced(s.ModelDir, Path.Combine(dir, "train.jsonl"), zero.ToOptions(dir).Grpo.MaxSteps, s.GrpoSeconds);
            }
            case ZeroStageOptions pretrain:
            {
                var run = new ZeroRun(pretrain.ToOptions(dir)) { OnLog = OnLog };
                var clock = Stopwatch.StartNew();
                run.PretrainBase(dir).Model.Dispose();
                run.WritePrompts(dir);
                return new Produced(Path.Combine(dir, "base"), null, pretrain.ToOptions(dir).Pretrain.Steps, clock.Elapsed.TotalSeconds);
            }
            default: throw new InvalidOperationException($"stage kind {stage.Kind}");
        }
    }

    static Produced Trained(TrainingResult r) => new(r.ModelDir, null, r.Steps, r.TrainingSeconds);

    Produced Sample(PipelineStage stage, SampleOptions o, string dir, string prompts, string? teacher, string where)
    {
        var all = Benchmark.Parse(prompts);
        var problems = o.Limit is { } n ? all.Take(n).ToList() : all;
        string? key = null;
        if (o.ApiKeyEnv.Length > 0 && string.IsNullOrEmpty(key = Environment.GetEnvironmentVariable(o.ApiKeyEnv)))
            throw new R1SharpException($"{where}: api_key_env {o.ApiKeyEnv}: that environment variable is not set or empty");
        using IEvalBackend backend = teacher is null
            ? new EndpointBackend(o.Endpoint, o.ModelName, key, o.Concurrency)
            : new LocalBackend(LocalModel.Load(teacher), o.MaxBatch);
        var clock = Stopwatch.StartNew();
        var summary = RejectionSampling.RunAsync(problems, o.K, o.Settings(stage.Inputs.TryGetValue("model_name_or_path", out var m) ? m.Values[0] : o.ModelName),
            backend, o.Filter, o.Keep, dir, p => OnSamples?.Invoke($"sample {stage.Name}", p)).GetAwaiter().GetResult();
        OnLog?.Invoke($"stage {stage.Name}: {summary.Samples} samples, {summary.Accepted} accepted ({100 * summary.AcceptanceRate:F1}%), {summary.Kept} kept");
        return new Produced(null, Path.Combine(dir, RejectionSampling.DatasetFile), 0, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The stage's training hooks: progress, and its time budget (max_train_seconds, or the training seconds of
    /// the stage time_budget_of names) checked against the seconds its steps have taken so far, resumed ones included.</summary>
    TrainingHooks Hooks(PipelineStage stage)
    {
        double? budget = stage.MaxTrainSeconds ?? (stage.TimeBudgetOf is { } of ? _done[of].TrainSeconds : null);
        if (budget is { } b) OnLog?.Invoke($"stage {stage.Name}: a wall-clock budget of {b:F1} s of training steps");
        return new TrainingHooks
        {
            Log = OnLog,
            Started = t => OnTrainStart?.Invoke(stage, t),
            Step = (t, row) => OnStep?.Invoke(stage, t, row),
            Stop = budget is null ? null : t => TrainingResult.StepSeconds(t.Metrics.Rows) >= budget,
        };
    }

    /// <summary>`base`, an earlier stage (its model or dataset), a file in an earlier stage's folder, or a path
    /// relative to the recipe.</summary>
    string ResolveInput(string value, bool dataset)
    {
        if (value == "base") return Recipe.BaseModel!;
        string head = value.Split('/')[0];
        if (_done.TryGetValue(head, out var r))
        {
            if (head != value) return Path.Combine(Recipe.OutputDir, value);
            string? output = dataset ? r.Dataset : r.Model;
            return Path.Combine(Recipe.OutputDir, output ?? throw new R1SharpException($"stage {head} recorded no {(dataset ? "dataset" : "model")}"));
        }
        if (Recipe.Stages.Any(s => s.Name == head)) return Path.Combine(Recipe.OutputDir, value);
        return Path.IsPathRooted(value) ? value : Path.GetFullPath(Path.Combine(Recipe.Directory, value));
    }

    string? Relative(string? path) => path is null ? null
        : Path.GetFullPath(path).StartsWith(Path.GetFullPath(Recipe.OutputDir) + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? Path.GetRelativePath(Recipe.OutputDir, path) : Path.GetFullPath(path);

    static void WriteAtomic(string path, string text)
    {
        File.WriteAllText(path + ".tmp", text);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public static double LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return double.NaN; }
    }
}
