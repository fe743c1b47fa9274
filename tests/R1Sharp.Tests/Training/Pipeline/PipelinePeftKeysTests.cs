using R1Sharp.Tasks;
using R1Sharp.Training;
using R1Sharp.Training.Distill;
using R1Sharp.Training.Pipeline;
using R1Sharp.Training.Sft;

namespace R1Sharp.Tests.Training.Pipeline;

/// <summary>Every training stage kind of a pipeline (sft, grpo, distill, and zero's GRPO run) takes TRL's adapter keys
/// and hands them to its trainer; a pretrain stage (a model from scratch) refuses them, naming the file and line.</summary>
public class PipelinePeftKeysTests
{
    const string Peft = "    use_peft: true\n    lora_r: 8\n    lora_alpha: 16\n    lora_target_modules: all-linear\n    gradient_checkpointing: true\n";

    static string Recipe(string extra = "") => $"""
        output_dir: run
        base_model: base-folder
        stages:
          - name: cold
            kind: sft
            model_name_or_path: base
            dataset_path: cold.jsonl
        {Peft}  - name: rl
            kind: grpo
            model_name_or_path: cold
            dataset_path: prompts.jsonl
        {Peft}  - name: gkd
            kind: distill
            model_name_or_path: base
            teacher_model_name_or_path: rl
            dataset_path: prompts.jsonl
        {Peft}  - name: zero
            kind: zero
        {Peft}{extra}
        """;

    [Fact]
    public void EveryTrainingStageKind_PassesTheLoraKeysToItsTrainer()
    {
        var recipe = PipelineRecipe.Parse(Recipe(), "p.yaml", Path.GetTempPath(), checkPaths: false);
        var recipes = new IPeftRecipe[]
        {
            (SftConfig)recipe.Stages[0].Options, (GrpoConfig)recipe.Stages[1].Options, (DistillConfig)recipe.Stages[2].Options,
            ((ZeroStageOptions)recipe.Stages[3].Options).ToOptions("x").Grpo,
        };
        foreach (var r in recipes)
        {
            var lora = PeftOptions.Lora(r);
            Assert.NotNull(lora);
            Assert.Equal(8, lora.R);
            Assert.Equal(16, lora.LoraAlpha);
            Assert.Equal(["all-linear"], lora.TargetModules);
            Assert.True(r.GradientCheckpointing, r.GetType().Name);
        }
        // Unset, a zero stage's GRPO keeps r1 zero's full fine-tuning.
        Assert.False(new ZeroStageOptions().ToOptions("x").Grpo.UsePeft);
    }

    [Fact]
    public void BadLoraKeys_InAnyStage_AndAdaptersOnAPretrainStage_AreOneErrorNamingFileAndLine()
    {
        var e = Assert.Throws<R1SharpException>(() => PipelineRecipe.Parse(Recipe().Replace("kind: zero\n    use_peft: true\n    lora_r: 8", "kind: zero\n    use_peft: true\n    lora_r: 0"),
            "p.yaml", Path.GetTempPath(), checkPaths: false));
        Assert.Equal("p.yaml:32: lora_r must be a positive integer, got 0", e.Message);
        e = Assert.Throws<R1SharpException>(() => PipelineRecipe.Parse(Recipe().Replace("teacher_model_name_or_path: rl\n    dataset_path: prompts.jsonl\n    use_peft: true",
            "teacher_model_name_or_path: rl\n    dataset_path: prompts.jsonl\n    use_peft: false\n    load_in_4bit: true"),
            "p.yaml", Path.GetTempPath(), checkPaths: false));
        Assert.Equal("p.yaml:22: load_in_4bit / load_in_8bit freeze a quantized base, which trains only with use_peft: true", e.Message);
        e = Assert.Throws<R1SharpException>(() => PipelineRecipe.Parse(Recipe("  - name: small\n    kind: pretrain\n    use_peft: true\n"),
            "p.yaml", Path.GetTempPath(), checkPaths: false));
        Assert.StartsWith("p.yaml:39: a pretrain stage trains a model from scratch", e.Message);
    }
}
