using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

/// <summary>A tiny random Qwen2 on the demo tokenizer and a GRPO config small enough for a test to take seconds.</summary>
public static class TinyGrpo
{
    static readonly Lazy<string> TokenizerDir = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-test-zero-tokenizer-" + Environment.ProcessId);
        ZeroTokenizer.Write(dir);
        return dir;
    });

    public static string TokenizerFolder => TokenizerDir.Value;
    public static HfTokenizer Tokenizer() => HfTokenizer.FromFolder(TokenizerDir.Value);

    public static CausalLM Model(HfTokenizer tok, int seed = 1)
    {
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, NumKeyValueHeads = 1, HeadDim = 16, IntermediateSize = 64,
        };
        var m = CausalLM.Create(cfg);
        m.InitializeRandom(seed);
        return m;
    }

    public static GrpoConfig Config(string outputDir) => new()
    {
        OutputDir = outputDir, NumGenerations = 4, PerDeviceTrainBatchSize = 8, GradientAccumulationSteps = 2,
        MaxCompletionLength = 6, LearningRate = 1e-2, MaxSteps = 4, SaveSteps = 0, LossType = "grpo", Seed = 5,
        LrSchedulerType = "constant", NumThreads = 1,
    };

    public static List<PromptExample> Data(int n = 16) =>
        Enumerable.Range(0, n).Select(i => new PromptExample($"{i}+{i}", (2 * i).ToString())).ToList();

    /// <summary>An easy dense reward: the share of completion characters that are the digit 7.</summary>
    public static RewardSet Sevens() =>
        new([new RewardFunction("sevens", (_, c, _) => c.Length == 0 ? 0 : c.Count(ch => ch == '7') / (double)c.Length)]);

    public static Dictionary<string, float[]> Weights(CausalLM m) =>
        m.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.data<float>().ToArray());
}
