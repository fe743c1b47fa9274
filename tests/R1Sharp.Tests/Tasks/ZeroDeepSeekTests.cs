using System.Text.Json.Nodes;
using R1Sharp.Tasks;
using R1Sharp.Training;

namespace R1Sharp.Tests.Tasks;

/// <summary>`r1 zero --arch deepseek_v3`: the embedded R1-Zero demo end to end on a tiny MoE (pre-training with the
/// balance and MTP losses, GRPO with bias balancing, evaluation, report), at a size a test can afford.</summary>
public class ZeroDeepSeekTests
{
    [Fact]
    public void TheZeroDemoRunsOnATinyDeepSeekV3()
    {
        using var dir = new TempDir();
        var o = new ZeroOptions
        {
            Arch = "deepseek_v3", OutputDir = dir.Path, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64,
            Pretrain = new PretrainOptions { Steps = 30, BatchSize = 8, LearningRate = 5e-3, WarmupSteps = 3 },
            RlPrompts = 32, EvalProblems = 4, EvalSamples = 1,
        };
        o.Grpo.MaxSteps = 2; o.Grpo.NumGenerations = 4; o.Grpo.PerDeviceTrainBatchSize = 8; o.Grpo.GradientAccumulationSteps = 1;
        o.Grpo.MaxCompletionLength = 12; o.Grpo.SaveSteps = 0;
        var run = new ZeroRun(o);
        var summary = run.Run();
        Assert.Equal(4, summary.Problems);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(summary.ModelDir, "config.json")))!;
        Assert.Equal("deepseek_v3", (string?)config["model_type"]);
        var rows = MetricsLog.Read(Path.Combine(dir.Path, "grpo", "metrics.jsonl"));
        Assert.Equal(2, rows.Count);
        Assert.True(rows[^1].ContainsKey("moe/layer_1/load_entropy"));
        Assert.True(File.Exists(Path.Combine(dir.Path, "report.md")));
    }
}
