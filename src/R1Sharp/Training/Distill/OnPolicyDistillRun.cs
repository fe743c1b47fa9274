using R1Sharp.Eval;
using R1Sharp.Generation;
using R1Sharp.Models;

namespace R1Sharp.Training.Distill;

/// <summary>
/// `r1 distill --mode on-policy` and the pipeline's distill stage as a function: loads the student and the teacher
/// (which must share the student's tokenizer), reads the prompts, trains with <see cref="OnPolicyDistillTrainer"/>
/// (resuming from output_dir's newest checkpoint when asked) and writes the curves and the student to output_dir/model
/// (with use_peft also the adapter to output_dir/adapter, as `r1 train sft|grpo`: <see cref="PeftOptions.SaveResult"/>).
/// </summary>
public static class OnPolicyDistillRun
{
    public static readonly (string Key, string File, string Title)[] Curves =
    [
        ("loss", "loss.png", "Per-token divergence to the teacher"),
        ("teacher_logp", "teacher_logp.png", "Teacher log-prob of the student's tokens"),
        ("accuracy", "accuracy.png", "Accuracy of the student's samples"),
    ];

    public static TrainingResult Run(DistillConfig cfg, string source, bool resume, TrainingHooks? hooks = null)
    {
        hooks ??= new TrainingHooks();
        if (cfg.ModelNameOrPath.Length == 0) throw new R1SharpException($"{source}: model_name_or_path (the student) is required");
        if (cfg.TeacherModelNameOrPath.Length == 0) throw new R1SharpException($"{source}: teacher_model_name_or_path is required");
        if (cfg.DatasetPath.Length == 0) throw new R1SharpException($"{source}: dataset_path is required");
        CheckSameTokenizer(cfg.ModelNameOrPath, cfg.TeacherModelNameOrPath);
        var data = Benchmark.Parse(cfg.DatasetPath).Select(p => new PromptExample(p.Problem, p.Answer)).ToList();
        using var student = LocalModel.Load(cfg.ModelNameOrPath);
        using var teacher = LocalModel.Load(cfg.TeacherModelNameOrPath);
        var trainer = new OnPolicyDistillTrainer(cfg, student.Model, teacher.Model, student.Tokenizer, data,
            GrpoRun.Template(cfg.PromptTemplate, student), cfg.ModelNameOrPath, source) { OnLog = hooks.Log };
        if (resume && trainer.Resume()) hooks.Log?.Invoke($"resumed at step {trainer.State.Step}");
        hooks.Train(trainer);
        RunPlots.TryWrite(cfg.OutputDir, trainer.Metrics.Rows, Curves, "distillation step", hooks.Log);
        string modelDir = PeftOptions.SaveResult(student.Model, cfg.OutputDir, cfg.ModelNameOrPath); // with use_peft: adapter/ too
        return new TrainingResult(cfg.OutputDir, modelDir, trainer.State.Step, trainer.Metrics.Rows.ToList());
    }

    /// <summary>The teacher scores the student's token ids, so both must mean the same thing by them: the two folders'
    /// tokenizer.json must hold the same vocabulary, merges and added tokens.</summary>
    public static void CheckSameTokenizer(string student, string teacher)
    {
        static string Vocabulary(string dir)
        {
            string path = Path.Combine(dir, "tokenizer.json");
            if (!File.Exists(path)) throw new R1SharpException($"{dir}: no tokenizer.json in the model folder");
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
            return (json["model"]?.ToJsonString() ?? "") + (json["added_tokens"]?.ToJsonString() ?? "");
        }
        if (Vocabulary(student) != Vocabulary(teacher))
            throw new R1SharpException($"{teacher}: the teacher's tokenizer.json differs from the student's ({student}); on-policy distillation " +
                "compares next-token distributions token by token, so both must share one tokenizer (use off-policy distillation otherwise)");
    }
}
