using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

public class ModelDTypeTests
{
    /// <summary>
    /// Models are built on several threads at once (a server reloading weights while a trainer builds its reference
    /// model; test classes running side by side). libtorch's default dtype is one setting for the whole process, so a
    /// constructor that set it around its work handed bf16 parameters to a float32 model built meanwhile on another
    /// thread (191 of 300 here): its weights were then rounded to bf16 on load, and its greedy text moved.
    /// </summary>
    [Fact]
    public void AFloat32ModelBuiltBesideBf16OnesHasFloat32Parameters()
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 1000);
        bool stop = false;
        var other = new Thread(() =>
        {
            while (!Volatile.Read(ref stop)) { using var m = CausalLM.Create(cfg, ScalarType.BFloat16); }
        });
        other.Start();
        var wrong = new List<string>();
        try
        {
            for (int i = 0; i < 100; i++)
            {
                using var m = CausalLM.Create(cfg);
                wrong.AddRange(m.named_parameters().Where(p => p.parameter.dtype != ScalarType.Float32).Select(p => $"{i}: {p.name} {p.parameter.dtype}"));
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            other.Join();
        }
        Assert.Empty(wrong);
        Assert.Equal(ScalarType.Float32, get_default_dtype());
    }

    [Fact]
    public void EveryParameterHasTheRequestedDType()
    {
        var cfg = ModelPresets.Create("llama", "tiny", 1000) with { TieWordEmbeddings = false };
        using var m = CausalLM.Create(cfg, ScalarType.BFloat16);
        Assert.All(m.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Contains(m.named_parameters(), p => p.name == "lm_head.weight");
    }
}
