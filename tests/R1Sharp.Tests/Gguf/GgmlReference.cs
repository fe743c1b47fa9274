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

    static IntPtr Load()
    {
        LlamaCpp.Initialise();
        string root = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        foreach (var variant in new[] { "avx2", "avx", "noavx" })
        {
            string path = Path.Combine(root, variant, "libggml-base.so");
            if (File.Exists(path)) return NativeLibrary.Load(path);
        }
        throw new FileNotFoundException($"libggml-base.so not found under {root}");
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
