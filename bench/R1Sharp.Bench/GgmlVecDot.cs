using System.Runtime.InteropServices;
using R1Sharp.IO;

namespace R1Sharp.Bench;

/// <summary>
/// llama.cpp's own CPU dot products (ggml-cpu's type traits: from_float quantises x to the format's vec_dot_type, then
/// vec_dot per weight row, as ggml_compute_forward_mul_mat does for a few rows of x), loaded from LLamaSharp's
/// best-matching build for this CPU (activations are quantised inside the timing, as R1Sharp's are), for a per-core comparison with R1Sharp's kernels on the same blocks.
/// </summary>
public static unsafe class GgmlVecDot
{
    [StructLayout(LayoutKind.Sequential)]
    struct Traits
    {
        public delegate* unmanaged<float*, void*, long, void> FromFloat;
        public delegate* unmanaged<int, float*, nuint, void*, nuint, void*, nuint, int, void> VecDot;
        public int VecDotType;
        public long NRows;
    }

    static IntPtr lib;
    public static string Variant { get; private set; } = "";

    static void Load()
    {
        if (lib != IntPtr.Zero) return;
        string root = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        Variant = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "avx512" : "avx2";
        NativeLibrary.Load(Path.Combine(root, Variant, "libggml-base.so"));
        lib = NativeLibrary.Load(Path.Combine(root, Variant, "libggml-cpu.so"));
        ((delegate* unmanaged<void>)NativeLibrary.GetExport(lib, "ggml_cpu_init"))();
    }

    static Traits Get(GgmlType t)
    {
        Load();
        var get = (delegate* unmanaged<int, Traits*>)NativeLibrary.GetExport(lib, "ggml_get_type_traits_cpu");
        return *get((int)t);
    }

    /// <summary>Bytes of a row of k activations in ggml's vec_dot_type (q8_K: f32 d, 256 int8, 16 int16 sums; q8_0: f16 d, 32 int8).</summary>
    static long ActivationBytes(int vecDotType, int k) => vecDotType switch
    {
        (int)GgmlType.Q8_K => k / 256 * 292,
        (int)GgmlType.Q8_0 => k / 32 * 34,
        _ => throw new NotSupportedException($"vec_dot_type {vecDotType}"),
    };

    /// <summary>y[r, j] = W row j · x row r for rows of x, one thread: x quantised by ggml, then one vec_dot per pair.</summary>
    public static void Run(GgmlType type, byte* w, long rowBytes, int n, int k, float* x, int rows, float* y)
    {
        var tr = Get(type);
        if (tr.NRows != 1) throw new NotSupportedException($"ggml's {type} vec_dot does {tr.NRows} rows at once");
        long ab = ActivationBytes(tr.VecDotType, k);
        var act = (byte*)NativeMemory.AlignedAlloc((nuint)(ab * rows), 64);
        try
        {
            // x goes into the vec_dot_type's blocks with that type's from_float (the weight type's would quantise to Q4_K)
            var fromFloat = Get((GgmlType)tr.VecDotType).FromFloat;
            for (int r = 0; r < rows; r++) fromFloat(x + (long)r * k, act + r * ab, k);
            for (int j = 0; j < n; j++)
                for (int r = 0; r < rows; r++)
                    tr.VecDot(k, y + (long)r * n + j, 0, w + j * rowBytes, 0, act + r * ab, 0, 1);
        }
        finally { NativeMemory.AlignedFree(act); }
    }
}
