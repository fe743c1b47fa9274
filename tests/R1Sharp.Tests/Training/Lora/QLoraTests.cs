using R1Sharp.IO;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Lora;

/// <summary>QLoRA: the base's layers in ggml blocks (read in place, frozen), gradients flowing through them to the
/// adapters. The reference is the same model with dense weights equal to the blocks' dequantised values (ggml's),
/// trained by plain autograd.</summary>
public class QLoraTests
{
    [Fact]
    public void InputGradient_ThroughQuantizedBlocks_IsGradTimesTheDequantisedMatrix()
    {
        var gen = new Generator(3);
        using var w = normal(0, 1, [48, 256], generator: gen);
        var blocks = new byte[48 * 256 / 256 * 144];
        GgmlQuantize.Quantize(GgmlType.Q4_K, w.data<float>().ToArray(), blocks);
        var q = QuantMatrix.FromBlocks("w", GgmlType.Q4_K, 48, 256, blocks);
        var deq = new float[48 * 256];
        unsafe { fixed (float* p = deq) q.Dequantize(0, 48, p); }
        using var dense = tensor(deq, [48, 256]);
        using var g = normal(0, 1, [2, 5, 48], generator: gen);
        using var expected = g.matmul(dense);
        foreach (var gemm in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var got = QuantPrefill.InputGradient(g, q, gemm);
            Assert.Equal(expected.shape, got.shape);
            double tol = gemm == ScalarType.Float32 ? 1e-4 : 0.05;
            Assert.True((got - expected).abs().max().item<float>() <= tol * expected.abs().max().item<float>(), $"{gemm}");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 64)]
    [InlineData(GgmlType.Q4_K, 256)]
    public void AdapterGradients_ThroughAQuantizedBase_MatchTheDequantisedDenseBase(GgmlType type, int hidden)
    {
        var tok = TinyGrpo.Tokenizer();
        using var quantized = LoraTestModels.Model(tok, hidden: hidden, tied: false);
        using var dense = LoraTestModels.Model(tok, hidden: hidden, tied: false);
        PeftOptions.QuantizeBase(quantized, type);
        Assert.True(quantized.IsQuantized);
        // The dense reference holds exactly the values the blocks dequantise to.
        using (no_grad())
            foreach (var (name, module) in quantized.named_modules())
                if (module is Linear { Quantized: { } qm })
                {
                    var values = new float[(long)qm.Rows * qm.Cols];
                    unsafe { fixed (float* p = values) qm.Dequantize(0, qm.Rows, p); }
                    dense.StateDict()[name + ".weight"].copy_(tensor(values, [qm.Rows, qm.Cols]));
                }
        var config = new LoraConfig { R = 4, TargetModules = [LoraConfig.AllLinear] };
        var grads = new List<Dictionary<string, float[]>>();
        foreach (var m in new[] { quantized, dense })
        {
            var lora = LoraModel.Of(m);
            lora.AddFresh(config, seed: 5);
            LoraTestModels.RandomizeB(lora);
            lora.FreezeBase();
            using var batch = new SequenceBatch([[5, 6, 7, 8], [9, 10]], [[20, 21, 22], [23, 24]], m.Device);
            using var scope = NewDisposeScope();
            var scores = batch.Score(m, new TrainingMemory(GradientCheckpointing: true, LogprobChunkSize: 3));
            scores.Pass.Backward((scores.LogProbs * batch.CompletionMask).sum());
            grads.Add(lora.NamedParameters().ToDictionary(p => p.Name, p => p.Param.grad!.data<float>().ToArray()));
        }
        Assert.Equal(grads[1].Keys, grads[0].Keys);
        // Layer 0's adapters: their gradient passed back through every quantized layer above them.
        Assert.Contains(grads[0].Keys, k => k.Contains("layers.0.self_attn.q_proj.lora_A"));
        foreach (var (name, g) in grads[1])
        {
            double scale = Math.Max(1e-6, g.Max(Math.Abs));
            var q = grads[0][name];
            // The quantized product runs bf16 tiles where the CPU has native bf16 GEMM: close, not bit-equal.
            double tol = CpuFeatures.NativeBf16Gemm ? 0.05 : 1e-3;
            for (int i = 0; i < g.Length; i++) Assert.True(Math.Abs(g[i] - q[i]) <= tol * scale, $"{name}[{i}]: {g[i]} vs {q[i]}");
        }
    }
}
