using R1Sharp.Kernels;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using R1Sharp.Models;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Tests.Models;

/// <summary>The decode kernel (Linear.Apply / ApplyMany without autograd) against libtorch's F.linear in float32
/// computed from the same weights, at odd sizes and every row count it takes; and ApplyMany under autograd against
/// separate F.linear calls, so training sees the same values and gradients.</summary>
public class LinearGemvTests
{
    static Linear Make(int k, int n, bool bias, ScalarType dtype, int seed)
    {
        var l = new Linear(k, n, bias);
        using (no_grad())
        {
            var g = new Generator((ulong)seed);
            l.weight!.copy_(randn([n, k], generator: g));
            l.bias?.copy_(randn([n], generator: g));
        }
        l.to(dtype);
        return l;
    }

    static void AssertClose(Tensor expected, Tensor actual, double rtol, double atol)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = expected.to(ScalarType.Float32).data<float>().ToArray();
        var a = actual.to(ScalarType.Float32).data<float>().ToArray();
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= atol + rtol * Math.Abs(e[i]), $"element {i}: expected {e[i]}, got {a[i]}");
    }

    public static TheoryData<string, int, int> Cases()
    {
        var d = new TheoryData<string, int, int>();
        foreach (var dtype in new[] { "f32", "bf16" })
            foreach (var (k, n) in new[] { (37, 5), (96, 13), (257, 66), (896, 130) })
                d.Add(dtype, k, n);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FusedAndSingleMatchLibtorchForOneToSixteenRows(string dtypeName, int k, int n)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var a = Make(k, n, bias: true, dtype, 1);
        using var b = Make(k, n + 3, bias: false, dtype, 2);
        using var c = Make(k, 1, bias: true, dtype, 3);
        // bfloat16 outputs are rounded once to 8 bits of mantissa, the reference is float32.
        double rtol = dtype == ScalarType.BFloat16 ? 8e-3 : 2e-5, atol = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-4;
        using var _ = no_grad();
        // Both kernel families where the machine has AVX-512 (the 512-bit one from 4 rows when K is a multiple of 16).
        foreach (bool wide in Avx512F.IsSupported ? new[] { true, false } : [false])
        for (int rows = 1; rows <= LinearKernels.FastPathMaxRows; rows++)
        {
            Gemv.WideEnabled = wide;
            using var scope = NewDisposeScope();
            var x = randn([rows, 1, k], dtype: ScalarType.Float32, generator: new Generator((ulong)(100 + rows))).to(dtype);
            var fused = Linear.ApplyMany(x, a, b, c);
            var layers = new[] { a, b, c };
            for (int i = 0; i < 3; i++)
            {
                var w = layers[i].weight!.to(ScalarType.Float32);
                var expected = F.linear(x.to(ScalarType.Float32), w, layers[i].bias?.to(ScalarType.Float32));
                Assert.Equal(dtype, fused[i].dtype);
                AssertClose(expected, fused[i], rtol, atol);
                AssertClose(expected, layers[i].forward(x), rtol, atol);
            }
        }
    }

    /// <summary>The kernel itself at every row count, bf16 included: on a machine with native bf16 GEMM, Linear sends
    /// bf16 products of 4 rows and more to libtorch, so the test above would not reach the kernel's bf16 blocks.</summary>
    [Theory]
    [InlineData(true, 96)]
    [InlineData(true, 257)]
    [InlineData(false, 96)]
    [InlineData(false, 257)]
    public unsafe void KernelMatchesLibtorchAtEveryRowCount(bool bf16, int k)
    {
        const int n = 13;
        var dtype = bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
        double rtol = bf16 ? 8e-3 : 2e-5, atol = bf16 ? 2e-2 : 1e-4;
        using var _ = no_grad();
        var g = new Generator(5);
        using var w = randn([n, k], generator: g).to(dtype);
        using var bias = randn([n], generator: g).to(dtype);
        static nint Address(Tensor t) => (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(t.bytes));
        foreach (bool wide in Avx512F.IsSupported ? new[] { true, false } : [false])
            for (int rows = 1; rows <= 16; rows++)
            {
                using var scope = NewDisposeScope();
                Gemv.WideEnabled = wide;
                var x = randn([rows, k], generator: g); // float32, as the kernel takes it
                var y = empty([rows, n], dtype: dtype);
                Gemv.Run(bf16, [new Gemv.Target(Address(w), Address(y), n, Address(bias))], (float*)Address(x), rows, k, threads: 2);
                var expected = F.linear(x, w.to(ScalarType.Float32), bias.to(ScalarType.Float32));
                AssertClose(expected, y, rtol, atol);
            }
    }

    [Theory]
    [InlineData(17)]   // one block of 16 and one of 1
    [InlineData(48)]
    [InlineData(LinearKernels.Bf16ChunkedMaxRows)]
    [InlineData(LinearKernels.Bf16ChunkedMaxRows + 1)] // widened to float32
    [InlineData(300)]
    public void Bf16PrefillRowsMatchAFloat32Reference(int rows)
    {
        using var a = Make(257, 66, bias: true, ScalarType.BFloat16, 7);
        using var b = Make(257, 13, bias: false, ScalarType.BFloat16, 8);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = randn([1, rows, 257], dtype: ScalarType.Float32, generator: new Generator((ulong)rows)).to(ScalarType.BFloat16);
        var fused = Linear.ApplyMany(x, a, b);
        var layers = new[] { a, b };
        for (int i = 0; i < 2; i++)
        {
            var expected = F.linear(x.to(ScalarType.Float32), layers[i].weight!.to(ScalarType.Float32), layers[i].bias?.to(ScalarType.Float32));
            Assert.Equal(ScalarType.BFloat16, fused[i].dtype);
            Assert.Equal(ScalarType.BFloat16, layers[i].forward(x).dtype);
            AssertClose(expected, fused[i], 8e-3, 2e-2);
            AssertClose(expected, layers[i].forward(x), 8e-3, 2e-2);
        }
    }

    [Theory]
    [InlineData("f32", 1)]
    [InlineData("f32", 3)]
    [InlineData("bf16", 1)]
    [InlineData("bf16", 3)]
    [InlineData("bf16", 20)] // 16-row blocks
    public void ANonContiguousInputGivesWhatItsContiguousCopyGives(string dtypeName, int rows)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var a = Make(40, 9, bias: true, dtype, 11);
        using var b = Make(40, 6, bias: false, dtype, 12);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        // Every other column of [rows, 80]: the kernel reads x through a contiguous copy.
        var x = randn([rows, 80], generator: new Generator(5)).to(dtype).slice(1, 0, 80, 2);
        Assert.False(x.is_contiguous());
        var fromView = Linear.ApplyMany(x, a, b);
        var fromCopy = Linear.ApplyMany(x.contiguous(), a, b);
        for (int i = 0; i < 2; i++) Assert.True(fromView[i].eq(fromCopy[i]).all().item<bool>(), $"output {i} differs");
    }

    [Fact]
    public void Bf16OutputsAreTheFloat32SumRoundedOnce()
    {
        // With a bias the kernel adds in float32 and rounds to bfloat16 once, as addmm does: every output is within
        // half a bfloat16 ulp of the float32 reference (plus float32 summation-order noise), never a double rounding.
        using var a = Make(64, 33, bias: true, ScalarType.BFloat16, 13);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = randn([2, 64], generator: new Generator(6)).to(ScalarType.BFloat16);
        var expected = F.linear(x.to(ScalarType.Float32), a.weight!.to(ScalarType.Float32), a.bias!.to(ScalarType.Float32)).data<float>().ToArray();
        var actual = a.forward(x).to(ScalarType.Float32).data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++)
        {
            float halfUlp = MathF.Abs(expected[i]) * MathF.Pow(2, -8);
            Assert.True(MathF.Abs(actual[i] - expected[i]) <= halfUlp * 1.001f + 1e-6f, $"element {i}: {actual[i]} vs {expected[i]}");
        }
    }

    [Fact]
    public void UnderAutogradApplyManyGivesTheGradientsOfSeparateLinears()
    {
        using var a = Make(19, 7, bias: true, ScalarType.Float32, 4);
        using var b = Make(19, 5, bias: false, ScalarType.Float32, 5);
        var x = randn([2, 3, 19], dtype: ScalarType.Float32, generator: new Generator(6)); // explicit dtype: the default is global and other tests change it

        var outs = Linear.ApplyMany(x, a, b);
        Assert.True(outs.All(o => o.requires_grad));
        (outs[0].square().sum() + outs[1].sum()).backward();
        var grads = new[] { a.weight!.grad!.clone(), a.bias!.grad!.clone(), b.weight!.grad!.clone() };
        a.zero_grad(); b.zero_grad();

        (F.linear(x, a.weight, a.bias).square().sum() + F.linear(x, b.weight).sum()).backward();
        var expected = new[] { a.weight.grad!, a.bias!.grad!, b.weight.grad! };
        for (int i = 0; i < 3; i++) Assert.True(expected[i].allclose(grads[i], rtol: 0, atol: 0), $"gradient {i} differs");
    }
}
