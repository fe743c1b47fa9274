using R1Sharp.Kernels;

namespace R1Sharp.Tests.Kernels;

/// <summary>The one-region MoE decode kernel (<see cref="MoeDecode.Run"/>) on hand-built weights against the layer's
/// formula computed here in float64 — y = Σᵢ wᵢ·downᵢ(silu(gateᵢ·x)·(upᵢ·x)) + shared(x) + residual over the experts
/// the router callback picked — and on one thread against two: the items of the region wait for one another in
/// order, so the threads must not change a single bit.</summary>
public unsafe class MoeDecodeKernelTests
{
    const int Hidden = 64, Experts = 8, Inter = 26, SharedInter = 52, K = 3;

    sealed class Layer
    {
        public float[][] Gate = new float[Experts][], Up = new float[Experts][], Down = new float[Experts][];
        public float[] Router = [], SharedGate = [], SharedUp = [], SharedDown = [], X = [], Residual = [];
    }

    static float[] Random(Random rng, int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    static Layer Build(int seed, bool bf16)
    {
        var rng = new Random(seed);
        float[] R(int n, double s) { var v = Random(rng, n, s); return bf16 ? v.Select(RoundBf16).ToArray() : v; }
        var l = new Layer { Router = R(Experts * Hidden, 0.5), SharedGate = R(SharedInter * Hidden, 0.3), SharedUp = R(SharedInter * Hidden, 0.3),
            SharedDown = R(Hidden * SharedInter, 0.3), X = Random(rng, Hidden, 1), Residual = R(Hidden, 1) };
        if (bf16) l.X = l.X.Select(RoundBf16).ToArray(); // the token's hidden state is in the model's dtype
        for (int e = 0; e < Experts; e++) { l.Gate[e] = R(Inter * Hidden, 0.3); l.Up[e] = R(Inter * Hidden, 0.3); l.Down[e] = R(Hidden * Inter, 0.3); }
        return l;
    }

    static float RoundBf16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000);
    }

    /// <summary>Runs the kernel over the layer's weights stored as float32 or bfloat16; returns the output widened to
    /// float32, the experts the router chose and their weights, and the logits it was given.</summary>
    static (float[] Y, int[] Chosen, float[] Weights, float[] Logits) Run(Layer l, bool bf16, bool routed, bool residual, int threads)
    {
        var buffers = new List<nint>();
        nint Put(float[] v)
        {
            nint p = (nint)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(v.Length * 4));
            for (int i = 0; i < v.Length; i++)
                if (bf16) ((ushort*)p)[i] = (ushort)(BitConverter.SingleToUInt32Bits(v[i]) >> 16);
                else ((float*)p)[i] = v[i];
            buffers.Add(p);
            return p;
        }
        try
        {
            var w = new MoeDecode.Weights(l.Gate.Select(Put).ToArray(), l.Up.Select(Put).ToArray(), l.Down.Select(Put).ToArray(), Inter,
                Put(l.Router), Put(l.SharedGate), Put(l.SharedUp), Put(l.SharedDown), SharedInter);
            if (!routed) w = w with { Gate = [], Up = [], Down = [], Inter = 0, RouterWeight = 0 };
            int[] chosen = []; float[] weights = []; float[] seen = [];
            MoeDecode.Router route = logits =>
            {
                seen = logits.ToArray();
                // Top K by logit, sorted by expert, softmax weights over the chosen: any rule will do here.
                chosen = seen.Select((v, i) => (v, i)).OrderByDescending(p => p.v).Take(K).Select(p => p.i).Order().ToArray();
                var exp = chosen.Select(i => Math.Exp(seen[i])).ToArray();
                weights = exp.Select(v => (float)(v / exp.Sum())).ToArray();
                return (chosen, weights);
            };
            nint output = Put(new float[Hidden]);
            fixed (float* x = l.X)
                MoeDecode.Run(bf16, w, routed ? K : 0, routed ? route : null, x, residual ? Put(l.Residual) : 0, output, Hidden, threads);
            var y = new float[Hidden];
            for (int i = 0; i < Hidden; i++) y[i] = bf16 ? BitConverter.UInt32BitsToSingle((uint)((ushort*)output)[i] << 16) : ((float*)output)[i];
            return (y, chosen, weights, seen);
        }
        finally { foreach (var p in buffers) System.Runtime.InteropServices.NativeMemory.Free((void*)p); }
    }

    static double[] Mlp(float[] gate, float[] up, float[] down, int inter, float[] x)
    {
        var act = new double[inter];
        for (int j = 0; j < inter; j++)
        {
            double g = 0, u = 0;
            for (int i = 0; i < Hidden; i++) { g += gate[j * Hidden + i] * (double)x[i]; u += up[j * Hidden + i] * (double)x[i]; }
            act[j] = g / (1 + Math.Exp(-g)) * u;
        }
        var y = new double[Hidden];
        for (int o = 0; o < Hidden; o++)
            for (int j = 0; j < inter; j++) y[o] += down[o * inter + j] * act[j];
        return y;
    }

    [Theory]
    [InlineData(false, true, true)]
    [InlineData(true, true, true)]
    [InlineData(false, true, false)]
    [InlineData(false, false, true)]
    [InlineData(true, false, true)]
    public void MatchesTheLayersFormulaOnOneThreadAndTwo(bool bf16, bool routed, bool residual)
    {
        for (int seed = 1; seed <= 4; seed++)
        {
            var l = Build(seed, bf16);
            var (y, chosen, weights, logits) = Run(l, bf16, routed, residual, threads: 1);
            var want = Mlp(l.SharedGate, l.SharedUp, l.SharedDown, SharedInter, l.X);
            if (routed)
            {
                Assert.Equal(K, chosen.Length);
                for (int e = 0; e < Experts; e++)
                {
                    double logit = 0;
                    for (int i = 0; i < Hidden; i++) logit += l.Router[e * Hidden + i] * (double)l.X[i];
                    Assert.True(Math.Abs(logit - logits[e]) <= 1e-5 * Math.Max(1, Math.Abs(logit)), $"seed {seed}, router logit {e}: {logits[e]} against {logit}");
                }
                for (int s = 0; s < K; s++)
                {
                    var d = Mlp(l.Gate[chosen[s]], l.Up[chosen[s]], l.Down[chosen[s]], Inter, l.X);
                    for (int o = 0; o < Hidden; o++) want[o] += weights[s] * d[o];
                }
            }
            if (residual) for (int o = 0; o < Hidden; o++) want[o] += l.Residual[o];
            // float32: the order of sums; bfloat16: the products, the activations and the sums rounded to it on the way.
            double size = want.Max(Math.Abs), tolerance = bf16 ? 3e-2 : 1e-5;
            for (int o = 0; o < Hidden; o++)
                Assert.True(Math.Abs(y[o] - want[o]) <= tolerance * Math.Max(1, size), $"seed {seed}, output {o}: {y[o]} against {want[o]}");
            var two = Run(l, bf16, routed, residual, threads: 2);
            Assert.Equal(y, two.Y);
            Assert.Equal(chosen, two.Chosen);
        }
    }
}
