using R1Sharp.Models;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Lora;

/// <summary>Small random Qwen2 models on the demo tokenizer for the adapter tests, and a batch to score.</summary>
public static class LoraTestModels
{
    public static CausalLM Model(HfTokenizer tok, int hidden = 64, int layers = 2, bool tied = true, int seed = 3)
    {
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = hidden / 4,
            IntermediateSize = 2 * hidden, TieWordEmbeddings = tied,
        };
        var m = CausalLM.Create(cfg);
        m.InitializeRandom(seed);
        return m;
    }

    public static (Tensor Ids, Tensor Positions, Tensor Mask) Batch(int rows = 2, int length = 9, int vocab = 60, int seed = 1)
    {
        var rng = new Random(seed);
        var ids = tensor(Enumerable.Range(0, rows * length).Select(_ => (long)rng.Next(3, vocab)).ToArray(), [rows, length]);
        var pad = new int[rows];
        return (ids, AttentionMask.Positions(pad, 0, length, CPU), AttentionMask.Build(pad, 0, length, length, CPU));
    }

    public static float[] Logits(CausalLM m, (Tensor Ids, Tensor Positions, Tensor Mask) b)
    {
        using var _ = no_grad();
        using var l = m.Forward(b.Ids, b.Positions, b.Mask);
        return l.data<float>().ToArray();
    }

    /// <summary>Every adapter's B filled with random values (a fresh adapter's B is zero and changes nothing).</summary>
    public static void RandomizeB(R1Sharp.Models.Lora.LoraModel lora, int seed = 7)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed);
        foreach (var (name, p) in lora.NamedParameters())
            if (name.EndsWith("lora_B.weight")) p.copy_(normal(0, 0.05, p.shape, generator: gen));
    }

    public static float MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
}
