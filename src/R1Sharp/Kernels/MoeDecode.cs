using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// A DeepSeekMoE layer for the one token of a batch-1 decode step (<see cref="Models.DeepseekV3MoE"/>'s decode path) in
/// one parallel region of the kernel threads: the router logits from the gate's weight read in place and the routing,
/// the gate and up products of the shared and the chosen experts with SwiGLU applied as each pair of rows is done, then,
/// after every expert's activations are in, the down products (each expert's in runs of rows), then, split by output
/// rows, their weighted sum, the shared experts' output and the residual. One dispatch instead of two
/// with serial router, SwiGLU and sum around them: the other thread streams the shared expert's weights while the
/// router runs, and no thread waits for a serial pass between the products (bench/README.md, issue 16). Each value is
/// rounded where the libtorch path rounds it: router logits in float32 (DeepseekV3TopkRouter), every product in the
/// model's dtype, silu(gate) and silu(gate)·up in it (<see cref="Ops.SwiGlu"/>), the routed sum in float32 rounded
/// once, then the shared experts' output added and rounded, then the residual.
/// </summary>
public static unsafe class MoeDecode
{
    static readonly AsyncLocal<bool> disabled = new();

    /// <summary>Off: the tensor path, for A/B in tests and the bench (per async flow).</summary>
    public static bool Enabled { get => !disabled.Value; set => disabled.Value = !value; }

    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Picks the token's experts from the router logits: their indices, sorted, and their weights.</summary>
    public delegate (int[] Experts, float[] Weights) Router(ReadOnlySpan<float> logits);

    /// <summary>The weights of a layer: per routed expert the gate, up [inter, hidden] and down [hidden, inter] weights'
    /// addresses, the router's [experts, hidden] (0: no routing, the dense MLP of <see cref="Shared"/> alone), and the
    /// shared experts' (0: none) with their width.</summary>
    public sealed record Weights(nint[] Gate, nint[] Up, nint[] Down, int Inter, nint RouterWeight,
        nint SharedGate, nint SharedUp, nint SharedDown, int SharedInter);

    /// <summary>Rows of a gate/up (and of a down) item: about 128 KB of weights each, small enough that the last items
    /// of a phase even out the two threads, large enough that claiming one costs nothing.</summary>
    const int ItemBytes = 128 << 10;

    /// <summary>output [hidden] = Σ routed experts + shared experts (+ residual, 0: none) for x [hidden] (float32, the
    /// token's normed hidden state widened), k experts chosen by route.</summary>
    public static void Run(bool bf16, Weights w, int k, Router? route, float* x, nint residual, nint output, int hidden, int threads)
    {
        int experts = w.Gate.Length, slots = (route is null ? 0 : k) + (w.SharedInter > 0 ? 1 : 0);
        int width = (route is null ? 0 : k) * w.Inter + w.SharedInter;
        float* scratch = (float*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(width + experts + slots * hidden), sizeof(float));
        try
        {
            if (bf16) new Step<Bf16>(w, k, route, x, residual, output, hidden, scratch).Run(threads);
            else new Step<F32>(w, k, route, x, residual, output, hidden, scratch).Run(threads);
        }
        finally { System.Runtime.InteropServices.NativeMemory.Free(scratch); }
    }

    /// <summary>One call's state. Items are claimed in order (<see cref="KernelThreads.For"/>): the router first, then
    /// the shared experts' gate/up rows (which need no routing), the chosen experts' (which wait for it), then each
    /// expert's down rows (which wait for that expert's activations), then the sum (which waits for every down row). A
    /// thread only ever waits for items claimed before its own, so the two threads cannot wait on each other; on one
    /// thread the order alone satisfies every wait.</summary>
    sealed class Step<TW> where TW : struct, IWeights
    {
        readonly Weights w;
        readonly int k, hidden, width, sharedItems, slotItems, upRows, downRows, sharedDownRows, slotDownItems, sharedDownItems, firstPhase, secondPhase, combineItems;
        const int CombineRows = 256;
        readonly Router? route;
        readonly nint x, residual, output, act, logits, downs;
        int[] chosen = [];
        float[] weights = [];
        int routed, downDone, failed;
        /// <summary>Gate/up items done per expert slot (the shared experts' last).</summary>
        readonly int[] gateUpDone;
        /// <param name="scratch">the experts' activations side by side (the shared ones last), the router logits, then
        /// each expert's down output [hidden] (the shared ones last)</param>
        public Step(Weights w, int k, Router? route, float* x, nint residual, nint output, int hidden, float* scratch)
        {
            this.w = w; this.k = route is null ? 0 : k; this.route = route; this.hidden = hidden;
            this.x = (nint)x; this.residual = residual; this.output = output;
            width = this.k * w.Inter + w.SharedInter;
            act = (nint)scratch; logits = (nint)(scratch + width); downs = logits + (w.Gate.Length * sizeof(float));
            upRows = Math.Max(8, ItemBytes / (2 * hidden * TW.ElementSize)) & ~1;
            sharedItems = (w.SharedInter + upRows - 1) / upRows;
            slotItems = (w.Inter + upRows - 1) / upRows;
            firstPhase = 1 + sharedItems + this.k * slotItems;
            // Down products by expert and rows: long runs of one matrix, which the prefetchers follow; then the sum.
            downRows = Math.Max(16, ItemBytes / Math.Max(1, w.Inter * TW.ElementSize)) & ~1;
            slotDownItems = (hidden + downRows - 1) / downRows;
            sharedDownRows = w.SharedInter == 0 ? hidden : Math.Max(16, ItemBytes / (w.SharedInter * TW.ElementSize)) & ~1;
            sharedDownItems = w.SharedInter == 0 ? 0 : (hidden + sharedDownRows - 1) / sharedDownRows;
            gateUpDone = new int[this.k + 1];
            secondPhase = firstPhase + this.k * slotDownItems + sharedDownItems;
            combineItems = (hidden + CombineRows - 1) / CombineRows;
        }

        public void Run(int threads) => KernelThreads.For(secondPhase + combineItems, threads, Item);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
        void Item(int i)
        {
            try
            {
                if (i < firstPhase)
                {
                    if (i == 0) Route();
                    else if (i <= sharedItems)
                    {
                        int start = (i - 1) * upRows;
                        GateUpRows(w.SharedGate, w.SharedUp, start, Math.Min(w.SharedInter, start + upRows), (float*)act + k * w.Inter);
                    }
                    else
                    {
                        int slot = (i - 1 - sharedItems) / slotItems, start = (i - 1 - sharedItems) % slotItems * upRows;
                        if (!WaitFor(ref routed, 1)) return;
                        int e = chosen[slot];
                        GateUpRows(w.Gate[e], w.Up[e], start, Math.Min(w.Inter, start + upRows), (float*)act + slot * w.Inter);
                    }
                    if (i > 0) Interlocked.Increment(ref gateUpDone[i <= sharedItems ? k : (i - 1 - sharedItems) / slotItems]);
                }
                else if (i < secondPhase)
                {
                    // The shared experts' down rows first: their activations are done first.
                    int j = i - firstPhase, slot = j < sharedDownItems ? k : (j - sharedDownItems) / slotDownItems;
                    int rows = slot == k ? sharedDownRows : downRows, start = (slot == k ? j : j - sharedDownItems - slot * slotDownItems) * rows;
                    if (!WaitFor(ref gateUpDone[slot], slot == k ? sharedItems : slotItems)) return;
                    DownRows(slot, start, Math.Min(hidden, start + rows));
                    Interlocked.Increment(ref downDone);
                }
                else
                {
                    if (!WaitFor(ref downDone, secondPhase - firstPhase)) return;
                    int start = (i - secondPhase) * CombineRows;
                    Combine(start, Math.Min(hidden, start + CombineRows));
                }
            }
            catch
            {
                Volatile.Write(ref failed, 1);
                throw;
            }
        }

        /// <summary>Spins until counter reaches target; false if another item failed meanwhile.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
        bool WaitFor(ref int counter, int target)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref counter) < target)
            {
                if (Volatile.Read(ref failed) != 0) return false;
                spin.SpinOnce(sleep1Threshold: -1);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
        void Route()
        {
            if (route is not null)
            {
                RouterLogits<TW>((float*)x, w.RouterWeight, w.Gate.Length, hidden, (float*)logits);
                (chosen, weights) = route(new ReadOnlySpan<float>((void*)logits, w.Gate.Length));
            }
            Volatile.Write(ref routed, 1);
        }

        /// <summary>act[j] = round(silu(round(gate_j·x)))·round(up_j·x), rounded, for rows j in [start, end): the two rows
        /// read side by side (two memory streams sharing x).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void GateUpRows(nint gate, nint up, int start, int end, float* a)
        {
            long stride = (long)hidden * TW.ElementSize;
            for (int j = start; j < end; j++)
            {
                Gemv.Dot2<TW>(gate + (nint)(j * stride), up + (nint)(j * stride), (float*)x, hidden, out float g, out float u);
                g = TW.Round(g);
                float s = TW.Round(g / (1f + MathF.Exp(-g)));
                a[j] = TW.Round(s * TW.Round(u));
            }
        }

        /// <summary>Rows [start, end) of one expert's down product, rounded: two streams from the two halves of the range,
        /// as <see cref="Gemv"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void DownRows(int slot, int start, int end)
        {
            bool shared = slot == k;
            int inner = shared ? w.SharedInter : w.Inter;
            nint down = shared ? w.SharedDown : w.Down[chosen[slot]];
            float* a = (float*)act + slot * w.Inter, ds = (float*)downs + slot * hidden;
            long stride = (long)inner * TW.ElementSize;
            int half = (end - start) / 2;
            for (int p = start; p < start + half; p++)
            {
                Gemv.Dot2<TW>(down + (nint)(p * stride), down + (nint)((p + half) * stride), a, inner, out float lo, out float hi);
                ds[p] = TW.Round(lo); ds[p + half] = TW.Round(hi);
            }
            if ((end - start) % 2 != 0) ds[end - 1] = TW.Round(Gemv.Dot<TW>(down + (nint)((end - 1) * stride), a, inner));
        }

        /// <summary>Output rows [start, end): the routed experts' outputs weighted and summed in float32 and rounded, the
        /// shared experts' output added and rounded, then the residual.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
        void Combine(int start, int end)
        {
            float* d = (float*)downs;
            for (int j = start; j < end; j++)
            {
                float sum = 0;
                for (int s = 0; s < k; s++) sum += weights[s] * d[s * hidden + j];
                if (w.SharedInter > 0) sum = TW.Round(sum) + d[k * hidden + j];
                if (residual != 0) sum = TW.Round(sum) + TW.Scalar(residual, j);
                TW.Store(output, j, sum);
            }
        }
    }

    /// <summary>logits[e] = x · W[e] in float32 for the router weight W [experts, hidden] (float32 or bfloat16, widened
    /// exactly), as F.linear over the float32 copies computes them (up to the order of the sum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RouterLogits<TW>(float* x, nint w, int experts, int hidden, float* logits) where TW : struct, IWeights
    {
        for (int e = 0; e < experts; e++)
        {
            nint row = w + (nint)((long)e * hidden * TW.ElementSize);
            var acc = Vector256<float>.Zero;
            int i = 0;
            for (; i + 8 <= hidden; i += 8) acc = Fma.MultiplyAdd(TW.Load(row, i), Avx.LoadVector256(x + i), acc);
            float sum = Vector256.Sum(acc);
            for (; i < hidden; i++) sum += TW.Scalar(row, i) * x[i];
            logits[e] = sum;
        }
    }
}
