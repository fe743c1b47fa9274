using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.IO;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.IO;

/// <summary>DeepSeek's block-scaled FP8 checkpoints: every e4m3 byte against its value written out from the bit layout,
/// the 128 × 128 scale grid (a ragged last block included), a model's FP8 round trip, and the errors naming the tensor.</summary>
public class Fp8WeightsTests
{
    /// <summary>The value of an e4m3fn byte from its fields: (−1)^s · 2^(e−7) · (1 + m/8), or m · 2⁻⁹ when e = 0.</summary>
    static double FromBits(int b)
    {
        int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
        double v = e == 0 ? m * Math.Pow(2, -9) : (8 + m) * Math.Pow(2, e - 10);
        return s == 1 ? -v : v;
    }

    /// <summary>A safetensors file written by hand: one F8_E4M3 weight and its F32 scales.</summary>
    static void WriteFp8(string path, string name, byte[] weight, long rows, long cols, float[] scales, long scaleRows, long scaleCols)
    {
        long w = weight.Length, s = scales.Length * 4L;
        string header = $$$"""{"{{{name}}}":{"dtype":"F8_E4M3","shape":[{{{rows}}},{{{cols}}}],"data_offsets":[0,{{{w}}}]},"{{{name}}}_scale_inv":{"dtype":"F32","shape":[{{{scaleRows}}},{{{scaleCols}}}],"data_offsets":[{{{w}}},{{{w + s}}}]}}""";
        var scaleBytes = new byte[s];
        Buffer.BlockCopy(scales, 0, scaleBytes, 0, (int)s);
        SafetensorsTestUtil.WriteRaw(path, header, [.. weight, .. scaleBytes]);
    }

    [Fact]
    public void EveryE4M3ByteDequantisesToItsBitLayoutsValueTimesItsBlocksScale()
    {
        using var dir = new TempDir();
        const string name = "model.layers.0.self_attn.o_proj.weight";
        long rows = 130, cols = 131; // a ragged last block both ways: scale grid 2 × 2
        var codes = Enumerable.Range(0, 256).Where(b => (b & 0x7F) != 0x7F).ToArray();
        var weight = new byte[rows * cols];
        for (int i = 0; i < weight.Length; i++) weight[i] = (byte)codes[(i * 7) % codes.Length];
        float[] scales = [0.5f, 3.0f, 1.0f / 1024, 17.25f];
        WriteFp8(Path.Combine(dir.Path, "model.safetensors"), name, weight, rows, cols, scales, 2, 2);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var dest = zeros([rows, cols], dtype: dtype);
            CheckpointIO.LoadInto(dir.Path, new Dictionary<string, Tensor> { [name] = dest }, fp8BlockSize: [128, 128]);
            var got = dest.to(ScalarType.Float32).data<float>().ToArray();
            for (long r = 0; r < rows; r++)
                for (long c = 0; c < cols; c++)
                {
                    double expected = FromBits(weight[r * cols + c]) * scales[(r / 128) * 2 + c / 128];
                    if (dtype == ScalarType.BFloat16) expected = tensor((float)expected).to(ScalarType.BFloat16).to(ScalarType.Float32).item<float>();
                    Assert.True(got[r * cols + c] == (float)expected, $"{dtype} [{r}, {c}] byte 0x{weight[r * cols + c]:X2}: {got[r * cols + c]} vs {expected}");
                }
        }
        // Spot values of the format: 448 is the largest, 2⁻⁹ the smallest subnormal.
        Assert.Equal(448, FromBits(0x7E));
        Assert.Equal(-1.0, FromBits(0xB8));
        Assert.Equal(Math.Pow(2, -9), FromBits(0x01));
    }

    [Fact]
    public void TheEncoderRoundsToNearestEvenAndInvertsTheTable()
    {
        for (int b = 0; b < 256; b++)
            if ((b & 0x7F) != 0x7F) Assert.Equal((byte)b, Fp8E4M3.FromFloat(Fp8E4M3.Values[b]));
        Assert.Equal(0x38, Fp8E4M3.FromFloat(1 + 1f / 16));   // halfway between 1 and 1.125: the even mantissa, 1
        Assert.Equal(0x3A, Fp8E4M3.FromFloat(1 + 3f / 16));   // halfway between 1.125 and 1.25: 1.25
        Assert.Equal(0x08, Fp8E4M3.FromFloat(15.5f / 1024));  // 7.75 subnormal units round up into the smallest normal
        Assert.Equal(0x7E, Fp8E4M3.FromFloat(1000));          // saturates at 448
    }

    /// <summary>A tiny DeepSeek-V3 written as DeepSeek ships R1 (linear weights e4m3 with 128 × 128 scales, the rest
    /// bf16, quantization_config in config.json) loads back dequantised, within e4m3's rounding of each block.</summary>
    [Fact]
    public void AModelRoundTripsThroughFp8WithinE4M3Rounding()
    {
        using var dir = new TempDir();
        var cfg = DeepseekV3Config.Preset("tiny", 300) with { HiddenSize = 160, IntermediateSize = 272 }; // ragged blocks
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(4, std: 0.3);
        string folder = dir.File("fp8");
        ModelFolder.Save(model, folder, dtype: ScalarType.BFloat16, fp8: new Fp8QuantizationConfig());

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        Assert.Equal("fp8", (string?)config["quantization_config"]!["quant_method"]);
        Assert.Equal("e4m3", (string?)config["quantization_config"]!["fmt"]);
        using (var f = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors")))
        {
            Assert.Equal("F8_E4M3", f.Entry("model.layers.1.mlp.experts.3.down_proj.weight").DType);
            Assert.Equal("F8_E4M3", f.Entry("model.layers.0.self_attn.kv_a_proj_with_mqa.weight").DType);
            Assert.Equal(new long[] { 3, 2 }, f.Entry("model.layers.0.mlp.gate_proj.weight_scale_inv").Shape); // [272, 160]
            Assert.Equal("BF16", f.Entry("model.layers.1.mlp.gate.weight").DType);
            Assert.Equal("BF16", f.Entry("model.embed_tokens.weight").DType);
        }

        using var loaded = ModelFolder.Load(folder, dtype: ScalarType.Float32);
        Assert.Null(loaded.Config.QuantizationConfig); // dequantised in memory
        var original = model.StateDict();
        int quantised = 0;
        foreach (var (name, p) in loaded.StateDict())
        {
            var o = original[name];
            if (Fp8Weights.Quantizes(name, o))
            {
                quantised++;
                // e4m3 keeps 3 mantissa bits: within half a step (1/16 relative) of each value, blocks scaled to ±448.
                var err = (p - o).abs();
                Assert.True((err <= o.abs() / 15 + o.abs().max() / 448 / 2).all().item<bool>(), $"{name}: max error {err.max().item<float>()}");
                Assert.False(p.eq(o).all().item<bool>(), $"{name} was not quantised");
            }
            else Assert.True(p.eq(o.to(ScalarType.BFloat16).to(ScalarType.Float32)).all().item<bool>(), name);
        }
        Assert.True(quantised > 20);
        // And it runs.
        var tokens = new GenerationEngine(loaded).Generate([[1, 2, 3]], new SamplingOptions { Temperature = 0, MaxTokens = 4 }, []);
        Assert.Equal(4, tokens[0].TokenIds.Length);
    }

    [Fact]
    public void AMissingScaleACorruptExpertOrAMissingBlockSizeIsNamed()
    {
        using var dir = new TempDir();
        const string expert = "model.layers.1.mlp.experts.5.up_proj.weight";
        string file = Path.Combine(dir.Path, "model.safetensors");
        var dest = new Dictionary<string, Tensor> { [expert] = zeros(4, 8) };

        var weight = Enumerable.Repeat((byte)0x38, 32).ToArray();
        weight[13] = 0x7F; // NaN: no real checkpoint holds one
        WriteFp8(file, expert, weight, 4, 8, [1f], 1, 1);
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(dir.Path, dest, fp8BlockSize: [128, 128]));
        Assert.Contains($"'{expert}' holds an e4m3 NaN (0x7F) at [1, 5]", e.Message);

        e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(dir.Path, dest));
        Assert.Contains($"'{expert}' is F8_E4M3, but config.json has no quantization_config", e.Message);

        string header = $$$"""{"{{{expert}}}":{"dtype":"F8_E4M3","shape":[4,8],"data_offsets":[0,32]}}""";
        SafetensorsTestUtil.WriteRaw(file, header, Enumerable.Repeat((byte)0x38, 32).ToArray());
        e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(dir.Path, dest, fp8BlockSize: [128, 128]));
        Assert.Contains($"its scale '{expert}_scale_inv' is missing", e.Message);

        WriteFp8(file, expert, Enumerable.Repeat((byte)0x38, 32).ToArray(), 4, 8, [1f, 1f], 1, 2);
        e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(dir.Path, dest, fp8BlockSize: [128, 128]));
        Assert.Contains($"'{expert}_scale_inv' has shape [1, 2], expected [1, 1]", e.Message);
    }
}
