namespace R1Sharp.IO;

/// <summary>GGUF metadata value types (gguf.h, enum gguf_type).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>ggml tensor types (ggml.h, enum ggml_type); only the ones R1Sharp reads or writes are named.</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
}

/// <summary>An array metadata value: its element type and items (string, numbers or bool, boxed).</summary>
public sealed record GgufArray(GgufValueType ElementType, IReadOnlyList<object> Items);

/// <summary>One metadata entry. Value is string, bool, a boxed number of the exact CLR type, or <see cref="GgufArray"/>.</summary>
public sealed record GgufValue(GgufValueType Type, object Value)
{
    public static GgufValue Str(string s) => new(GgufValueType.String, s);
    public static GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Strings(IEnumerable<string> items) => new(GgufValueType.Array, new GgufArray(GgufValueType.String, items.Cast<object>().ToList()));
    public static GgufValue I32s(IEnumerable<int> items) => new(GgufValueType.Array, new GgufArray(GgufValueType.Int32, items.Cast<object>().ToList()));

    public override string ToString() => Value is GgufArray a ? $"[{a.ElementType} × {a.Items.Count}]" : $"{Value}";
}

/// <summary>Block geometry of the tensor types: elements per block and bytes per block (ggml-common.h).</summary>
public static class GgmlTypeInfo
{
    public static (int BlockSize, int BlockBytes) Geometry(GgmlType t) => t switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 or GgmlType.BF16 => (1, 2),
        GgmlType.Q4_0 => (32, 2 + 16),              // d (f16), 32 × 4-bit
        GgmlType.Q8_0 => (32, 2 + 32),              // d (f16), 32 × int8
        GgmlType.Q5_0 => (32, 2 + 4 + 16),          // d (f16), 32 fifth bits, 32 × 4-bit
        GgmlType.Q4_K => (256, 2 + 2 + 12 + 128),   // d, dmin, 12 bytes of 6-bit scales/mins, 256 × 4-bit
        GgmlType.Q5_K => (256, 2 + 2 + 12 + 32 + 128), // d, dmin, 6-bit scales/mins, 256 high bits, 256 × 4-bit
        GgmlType.Q6_K => (256, 128 + 64 + 16 + 2),  // ql, qh, 16 int8 scales, d
        _ => throw new R1SharpException($"ggml type {t} ({(uint)t}) is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)"),
    };

    public static bool IsKnown(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>Bytes of a tensor of <paramref name="elements"/> values; the count must fill whole blocks.</summary>
    public static long ByteSize(GgmlType t, long elements, string tensor)
    {
        var (bs, bb) = Geometry(t);
        if (elements % bs != 0) throw new R1SharpException($"tensor '{tensor}': {elements} elements is not a whole number of {t} blocks of {bs}");
        return elements / bs * bb;
    }

    /// <summary>llama_ftype written as general.file_type (llama.h): what most tensors are stored as.</summary>
    public static uint FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0, GgmlType.F16 => 1, GgmlType.Q4_0 => 2, GgmlType.Q8_0 => 7, GgmlType.BF16 => 32,
        _ => throw new R1SharpException($"no llama file type for {t}"),
    };
}
