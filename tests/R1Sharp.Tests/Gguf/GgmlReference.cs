using System.Runtime.InteropServices;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// ggml's own quantisation and dequantisation (libggml-base from LLamaSharp.Backend.Cpu), the reference our block
/// decoders are checked against: ggml_quantize_chunk makes real blocks, the type traits' to_float decodes them.
/// </summary>
public static unsafe class GgmlReference
{
    [StructLayout(LayoutKind.Sequential)]
    struct TypeTraits
    {
        public IntPtr TypeName;
        public long BlockSize;
        public long BlockSizeInterleave;
        public nuint TypeSize;
        [MarshalAs(UnmanagedType.U1)] public bool IsQuantized;
        public IntPtr ToFloat;
        public IntPtr FromFloatRef;
    }

    static readonly IntPtr Lib = Load();

    static string? variantDir;

    static IntPtr Load()
    {
        LlamaCpp.Initialise();
        string root = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        foreach (var variant in new[] { "avx2", "avx", "noavx" })
        {
            string path = Path.Combine(root, variant, "libggml-base.so");
            if (File.Exists(path)) { variantDir = Path.GetDirectoryName(path); return NativeLibrary.Load(path); }
        }
        throw new FileNotFoundException($"libggml-base.so not found under {root}");
    }

    static IntPtr cpuLib;

    [StructLayout(LayoutKind.Sequential)]
    struct CpuTraits
    {
        public delegate* unmanaged<float*, void*, long, void> FromFloat;
        public delegate* unmanaged<int, float*, nuint, void*, nuint, void*, nuint, int, void> VecDot;
        public int VecDotType;
        public long NRows;
    }

    static CpuTraits Cpu(int type)
    {
        lock (typeof(GgmlReference))
            if (cpuLib == IntPtr.Zero)
            {
                _ = Lib;
                cpuLib = NativeLibrary.Load(Path.Combine(variantDir!, "libggml-cpu.so"));
                ((delegate* unmanaged<void>)NativeLibrary.GetExport(cpuLib, "ggml_cpu_init"))();
            }
        return *((delegate* unmanaged<int, CpuTraits*>)NativeLibrary.GetExport(cpuLib, "ggml_get_type_traits_cpu"))(type);
    }

    /// <summary>
    /// y [rows, n] = x [rows, k] · Wᵀ by llama.cpp's own CPU kernels (ggml-cpu): x quantised to the weight type's
    /// vec_dot_type (q8_K for the K-quants, q8_0 for Q8_0/Q4_0) by that type's from_float, then vec_dot per pair, as
    /// ggml_compute_forward_mul_mat does for a few rows.
    /// </summary>
    public static float[] MulMat(int type, byte[] blocks, int n, int k, float[] x, int rows)
    {
        var tr = Cpu(type);
        var act = Cpu(tr.VecDotType);
        long actRow = tr.VecDotType switch { 15 => k / 256 * 292, 8 => k / 32 * 34, _ => throw new NotSupportedException($"vec_dot_type {tr.VecDotType}") };
        var a = new byte[actRow * rows];
        var y = new float[rows * n];
        long rowBytes = blocks.Length / n;
        fixed (float* xp = x) fixed (byte* ap = a) fixed (byte* wp = blocks) fixed (float* yp = y)
        {
            for (int r = 0; r < rows; r++) act.FromFloat(xp + (long)r * k, ap + r * actRow, k);
            for (int j = 0; j < n; j++)
                for (int r = 0; r < rows; r++) tr.VecDot(k, yp + (long)r * n + j, 0, wp + j * rowBytes, 0, ap + r * actRow, 0, 1);
        }
        return y;
    }

    static T Fn<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(Lib, name));

    delegate nuint QuantizeChunk(int type, float* src, void* dst, long start, long nrows, long nPerRow, float* imatrix);
    delegate TypeTraits* GetTraits(int type);
    delegate void ToFloat(void* x, float* y, long k);

    /// <summary>Rows of floats quantised by ggml into <paramref name="type"/> blocks.</summary>
    public static byte[] Quantize(int type, float[] values, int rows)
    {
        var traits = Traits(type);
        int perRow = values.Length / rows;
        var dst = new byte[values.Length / (int)traits.BlockSize * (int)traits.TypeSize];
        fixed (float* s = values)
        fixed (byte* d = dst)
        {
            nuint written = Fn<QuantizeChunk>("ggml_quantize_chunk")(type, s, d, 0, rows, perRow, null);
            if ((int)written != dst.Length) throw new InvalidOperationException($"ggml_quantize_chunk wrote {written} bytes, expected {dst.Length}");
        }
        return dst;
    }

    /// <summary>ggml's decoding of blocks into floats.</summary>
    public static float[] Dequantize(int type, byte[] blocks, int count)
    {
        var traits = Traits(type);
        var y = new float[count];
        fixed (byte* x = blocks)
        fixed (float* o = y)
            Marshal.GetDelegateForFunctionPointer<ToFloat>(traits.ToFloat)(x, o, count);
        return y;
    }

    /// <summary>The type traits, after checking the struct layout assumed here against the type's known name and block size.</summary>
    static TypeTraits Traits(int type)
    {
        var t = *Fn<GetTraits>("ggml_get_type_traits")(type);
        string name = Marshal.PtrToStringUTF8(t.TypeName) ?? "";
        if (t.ToFloat == IntPtr.Zero || t.BlockSize is not (32 or 256)) throw new InvalidOperationException($"unexpected ggml_type_traits layout for type {type} ('{name}', block {t.BlockSize})");
        return t;
    }

    public static string TypeName(int type) => Marshal.PtrToStringUTF8(Fn<GetTraits>("ggml_get_type_traits")(type)->TypeName) ?? "";
}
