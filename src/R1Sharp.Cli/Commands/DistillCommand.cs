using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Eval;
using R1Sharp.Training;
using R1Sharp.Training.Distill;
using R1Sharp.Training.Pipeline;
using R1Sharp.Training.Sampling;
using R1Sharp.Training.Sft;

namespace R1Sharp.Cli.Commands;

/// <summary>
/// `r1 distill --teacher DIR|--endpoint URL --student DIR --prompts FILE [--mode off-policy|on-policy]`: R1's
/// distillation (the teacher's verified samples, then SFT of the student) or on-policy distillation (the student
/// samples, the teacher scores every token), as one resumable job. With no arguments: the embedded proof on the
/// r1 zero task (recipes/zero-distill.yaml): base, GRPO and SFT-on-the-teacher students compared.
/// </summary>
public static class DistillCommand
{
    public static Command Create()
    {
        var teacher = new Option<string?>("--teacher") { Description = "teacher model folder (local)" };
        var endpoint = new Option<string?>("--endpoint") { Description = "teacher behind an OpenAI-compatible endpoint (DeepSeek's API, vLLM, SGLang, r1 serve); off-policy only" };
        var modelName = new Option<string?>("--model-name") { Description = "model name the endpoint serves" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the endpoint's API key" };
        var student = new Option<string?>("--student") { Description = "student model folder" };
        var prompts = new Option<string?>("--prompts") { Description = "JSONL of problems with reference answers (problem or question, answer), as r1 sample reads them" };
        var mode = new Option<string>("--mode") { Description = "off-policy (R1: SFT on the teacher's verified samples) or on-policy (the student samples, the teacher scores; reverse KL)", DefaultValueFactory = _ => "off-policy" };
        var config = new Option<string?>("--config") { Description = "hyper-parameters: an SFT recipe (off-policy; see recipes/distill.yaml) or a distillation recipe (on-policy; TRL GKD names)" };
        var output = new Option<string?>("--out") { Description = "job folder (default: runs/distill-STUDENT, or runs/zero-distill for the embedded proof); an existing one resumes" };
        var k = new Option<int>("--k") { Description = "off-policy: teacher samples per prompt", DefaultValueFactory = _ => 4 };
        var keep = new Option<int>("--keep") { Description = "off-policy: verified samples kept per prompt, shortest first (0: all)", DefaultValueFactory = _ => 1 };
        var temperature = new Option<float>("--temperature") { Description = "off-policy: teacher sampling temperature (DeepSeek: 0.6)", DefaultValueFactory = _ => 0.6f };
        var topP = new Option<float>("--top-p") { Description = "off-policy: nucleus mass (DeepSeek: 0.95)", DefaultValueFactory = _ => 0.95f };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "off-policy: completion tokens at most per teacher sample" };
        var limit = new Option<int?>("--limit") { Description = "use only the first N prompts" };
        var instruction = new Option<string>("--instruction") { Description = "appended to each problem after a newline (\"\" for none)", DefaultValueFactory = _ => EvalSettings.DeepSeekInstruction };
        var noThink = new Option<bool>("--no-think-prefix") { Description = "local teacher: do not open the assistant turn with <think> when the template does not" };
        var maxBatch = new Option<int>("--max-batch") { Description = "local teacher: sequences generated together", DefaultValueFactory = _ => 8 };
        var concurrency = new Option<int>("--concurrency") { Description = "endpoint teacher: requests in flight", DefaultValueFactory = _ => 8 };
        var json = new Option<bool>("--json") { Description = "print the summary as JSON (the embedded proof: each student's held-out pass@1 under base, grpo, sft)" };
        var cmd = new Command("distill", "Distil a teacher into a student: R1's SFT on verified teacher samples, or on-policy distillation; with no arguments, the embedded proof on the r1 zero task")
            { teacher, endpoint, modelName, apiKeyEnv, student, prompts, mode, config, output, k, keep, temperature, topP, maxTokens, limit, instruction, noThink, maxBatch, concurrency, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            if (p.GetValue(teacher) is null && p.GetValue(endpoint) is null && p.GetValue(student) is null && p.GetValue(prompts) is null)
            {
                // The embedded proof runs its own recipe: an option meant for a real job must not be silently dropped.
                var ignored = cmd.Options.Where(o => o != output && o != json && p.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
                if (ignored.Count > 0)
                    throw new R1SharpException($"{string.Join(", ", ignored)} {(ignored.Count == 1 ? "applies" : "apply")} to a distillation job (--student, --prompts and --teacher or --endpoint); the embedded proof takes only --out and --json");
                return Embedded(p.GetValue(output), p.GetValue(json));
            }
            string studentDir = p.GetValue(student) ?? throw new R1SharpException("r1 distill needs --student DIR (or no arguments at all for the embedded proof)");
            string promptsPath = p.GetValue(prompts) ?? throw new R1SharpException("r1 distill needs --prompts FILE (or no arguments at all for the embedded proof)");
            if ((p.GetValue(teacher) is null) == (p.GetValue(endpoint) is null)) throw new R1SharpException("give exactly one of --teacher DIR (local) or --endpoint URL (with --model-name)");
            CliCommon.CheckFinite(p.GetValue(temperature), "--temperature");
            CliCommon.CheckFinite(p.GetValue(topP), "--top-p");
            if (p.GetValue(k) < 1) throw new R1SharpException($"--k must be ≥ 1, got {p.GetValue(k)}");
            if (p.GetValue(keep) < 0) throw new R1SharpException($"--keep must be ≥ 0, got {p.GetValue(keep)}");
            if (p.GetValue(limit) is { } lim && lim < 1) throw new R1SharpException($"--limit must be ≥ 1, got {lim}");
            if (p.GetValue(maxBatch) < 1) throw new R1SharpException($"--max-batch must be ≥ 1, got {p.GetValue(maxBatch)}");
            if (p.GetValue(concurrency) < 1) throw new R1SharpException($"--concurrency must be ≥ 1, got {p.GetValue(concurrency)}");
            if (!File.Exists(promptsPath)) throw new R1SharpException($"{promptsPath}: prompts file not found");
            string outDir = p.GetValue(output) ?? Path.Combine("runs", "distill-" + Path.GetFileName(Path.GetFullPath(studentDir).TrimEnd('/')));
            return p.GetValue(mode) switch
            {
                "off-policy" => OffPolicy(p, studentDir, promptsPath, outDir),
                "on-policy" => OnPolicy(p.GetValue(teacher) ?? throw new R1SharpException("--mode on-policy needs a local --teacher DIR: the teacher scores every token of the student's samples"),
                    studentDir, promptsPath, outDir, p.GetValue(config), p.GetValue(limit), p.GetValue(json)),
                var m => throw new R1SharpException($"--mode \"{m}\" is unknown (expected off-policy or on-policy)"),
            };

            int OffPolicy(ParseResult p, string studentDir, string promptsPath, string outDir)
            {
                var sft = p.GetValue(config) is { } c ? RecipeLoader.Load<SftConfig>(c) : new SftConfig();
                sft.ModelNameOrPath = studentDir;
                var all = Benchmark.Parse(promptsPath);
                var job = new OffPolicyDistillation
                {
                    OutputDir = outDir, Problems = p.GetValue(limit) is { } n ? all.Take(n).ToList() : all, K = p.GetValue(k), Keep = p.GetValue(keep), Sft = sft,
                    Sampling = new EvalSettings
                    {
                        Model = p.GetValue(teacher) is { } t ? Path.GetFileName(Path.GetFullPath(t).TrimEnd('/')) : p.GetValue(modelName) ?? "",
                        Temperature = p.GetValue(temperature), TopP = p.GetValue(topP), MaxTokens = p.GetValue(maxTokens),
                        Instruction = p.GetValue(instruction)!, ForceThink = !p.GetValue(noThink),
                    },
                };
                job.Sampling.Sampling().Validate();
                SamplingSummary? sampled;
                using (var backend = EvalCommand.CreateBackend(p.GetValue(teacher), p.GetValue(endpoint), p.GetValue(modelName), p.GetValue(apiKeyEnv),
                    p.GetValue(maxBatch), p.GetValue(concurrency), null, null, new EndpointPolicy()))
                {
                    sampled = SampleCommand.RunWithProgress(job.Problems, job.K, job.Sampling, backend, job.Filter, job.Keep, job.SampleDir);
                }
                if (sampled is null) return 130;
                Console.Error.WriteLine($"teacher: {sampled.Samples} samples, {sampled.Accepted} accepted ({100 * sampled.AcceptanceRate:F1}%), {sampled.Kept} kept");
                var result = TrainProgress.Run("SFT", hooks => job.Train(sampled, hooks), row => $"SFT loss {row["loss"]:F3} acc {row["mean_token_accuracy"]:F3}");
                if (p.GetValue(json)) CliCommon.PrintJson(new { mode = "off-policy", output_dir = outDir, sample = sampled, model = result.ModelDir, steps = result.Steps, last_metrics = result.Last });
                else Console.WriteLine($"distilled {sampled.Kept} teacher samples into {result.ModelDir} in {result.Steps} SFT steps");
                return 0;
            }
        }));
        return cmd;
    }

    static int OnPolicy(string teacherDir, string studentDir, string promptsPath, string outDir, string? config, int? limit, bool json)
    {
        var cfg = config is null ? new DistillConfig() : RecipeLoader.Load<DistillConfig>(config);
        cfg.ModelNameOrPath = studentDir; cfg.TeacherModelNameOrPath = teacherDir; cfg.OutputDir = outDir;
        cfg.DatasetPath = promptsPath;
        if (limit is { } n)
        {
            // The trainer reads the whole file: a limited copy beside the job.
            Directory.CreateDirectory(outDir);
            cfg.DatasetPath = Path.Combine(outDir, "prompts.jsonl");
            File.WriteAllLines(cfg.DatasetPath, File.ReadLines(promptsPath).Where(l => l.Trim().Length > 0).Take(n));
        }
        var result = TrainProgress.Run("on-policy distillation", hooks => OnPolicyDistillRun.Run(cfg, config ?? "r1 distill", resume: true, hooks),
            row => $"reverse KL {row["loss"]:F4} teacher log-p {row["teacher_logp"]:F3} acc {row["accuracy"]:F2}");
        if (json) CliCommon.PrintJson(new { mode = "on-policy", output_dir = outDir, model = result.ModelDir, steps = result.Steps, last_metrics = result.Last });
        else Console.WriteLine($"distilled on-policy for {result.Steps} steps; model: {result.ModelDir}; metrics: {Path.Combine(outDir, "metrics.jsonl")}");
        return 0;
    }

    /// <summary>The embedded proof: recipes/zero-distill.yaml, resumed if its folder holds a run; the three students'
    /// held-out pass@1 under base, grpo and sft.</summary>
    static int Embedded(string? output, bool json)
    {
        var clock = Stopwatch.StartNew();
        var recipe = EmbeddedRecipe.Load(output);
        var records = PipelineProgress.Run(recipe, resume: true);
        double? Pass(string stage) => records.FirstOrDefault(r => r.Name == stage)?.Eval?.Pass1;
        var c = Comparison.Of(recipe.Compare, records);
        var names = new Dictionary<string, string> { ["student"] = "base", ["student_grpo"] = "grpo", ["student_sft"] = "sft" };
        if (json)
            CliCommon.PrintJson(new
            {
                @base = Pass("student"), grpo = Pass("student_grpo"), sft = Pass("student_sft"), teacher = Pass("teacher"),
                winner = c is null ? null : names[c.Winner], runner_up = c is null ? null : names[c.RunnerUp], margin_points = c?.MarginPoints, clear = c?.Clear,
                expected_winner = recipe.ExpectedWinner is { } e ? names[e] : null,
                verdict = c is null || recipe.ExpectedWinner is null ? null : c.Against(recipe.ExpectedWinner),
                k = recipe.Eval!.K, problems = records.FirstOrDefault(r => r.Eval != null)?.Eval?.Problems,
                sft_budget_seconds = records.FirstOrDefault(r => r.Name == "student_grpo")?.TrainSeconds,
                sft_seconds = records.FirstOrDefault(r => r.Name == "student_sft")?.TrainSeconds,
                seconds = clock.Elapsed.TotalSeconds, stage_seconds = records.Sum(r => r.WallSeconds), load_average = PipelineRunner.LoadAverage(),
                output_dir = recipe.OutputDir, report = Path.Combine(recipe.OutputDir, PipelineReport.ReportFile),
            });
        else PipelineProgress.PrintTable(recipe, records);
        return 0;
    }
}
