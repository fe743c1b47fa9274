using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using R1Sharp.IO;

namespace R1Sharp.Kernels;

/// <summary>
/// A weight matrix [Rows, Cols] (out features × in features, as nn.Linear's weight) kept in one of ggml's block
/// formats, exactly as a GGUF file stores it: row n is Cols / BlockSize consecutive blocks (ggml's ne[0] = Cols is the
/// contiguous dimension). The blocks are read in place (memory-mapped from the file, or an array pinned once); nothing
/// is dequantised ahead of time. The owner (a <see cref="GgufMapping"/> or the pinned array) must outlive every use of
/// <see cref="Data"/>: a mapping's matrices are valid until the mapping is disposed.
/// </summary>
public sealed unsafe class QuantMatrix
{
    /// <summary>The formats the kernels read (QuantGemv, QuantDequant).</summary>
    public static bool IsSupported(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    public string Name { get; }
    public GgmlType Type { get; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>Address of the first block of row 0.</summary>
    public nint Data { get; }
    public int BlockSize { get; }
    public int BlockBytes { get; }
    public long RowBytes => (long)Cols / BlockSize * BlockBytes;
    public long ByteSize => RowBytes * Rows;
    /// <summary>Blocks per row.</summary>
    public int Blocks => Cols / BlockSize;

    readonly object? _owner;
    readonly int[]? _rowOrder;

    /// <summary>A view of blocks at <paramref name="data"/>; <paramref name="owner"/> is kept alive as long as this matrix.</summary>
    public QuantMatrix(string name, GgmlType type, int rows, int cols, nint data, object? owner)
    {
        if (!IsSupported(type))
            throw new R1SharpException($"tensor {Excerpt.Quote(name)}: {type} is not a quantized format the kernels read (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)");
        (BlockSize, BlockBytes) = GgmlTypeInfo.Geometry(type);
        if (rows <= 0 || cols <= 0 || cols % BlockSize != 0)
            throw new R1SharpException($"tensor {Excerpt.Quote(name)}: a {type} matrix needs rows of whole {BlockSize}-value blocks; its shape [{rows}, {cols}] has {cols} values per row");
        Name = name; Type = type; Rows = rows; Cols = cols; Data = data; _owner = owner;
    }

    /// <summary>A matrix over a copy of <paramref name="blocks"/> in pinned memory (tests, quantizing in memory).</summary>
    public static QuantMatrix FromBlocks(string name, GgmlType type, int rows, int cols, ReadOnlySpan<byte> blocks)
    {
        var (bs, bb) = GgmlTypeInfo.Geometry(type);
        long expected = cols % bs == 0 ? (long)rows * (cols / bs) * bb : -1;
        if (blocks.Length != expected)
            throw new R1SharpException($"tensor {Excerpt.Quote(name)}: {blocks.Length} bytes of {type} blocks do not hold a [{rows}, {cols}] matrix ({expected} bytes)");
        var pinned = GC.AllocateUninitializedArray<byte>(blocks.Length, pinned: true);
        blocks.CopyTo(pinned);
        return new QuantMatrix(name, type, rows, cols, (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned)), pinned);
    }

    QuantMatrix(QuantMatrix m, int[] rowOrder) : this(m.Name, m.Type, m.Rows, m.Cols, m.Data, m._owner) => _rowOrder = rowOrder;

    /// <summary>
    /// The same blocks with row n read from stored row order[n]: how a GGUF file's q/k matrices, whose rows
    /// llama.cpp's converter permuted within each head for its interleaved RoPE, are read in Hugging Face's order
    /// without copying them (the kernels take one row pointer per output, so the order costs nothing).
    /// </summary>
    public QuantMatrix WithRowOrder(int[] order)
    {
        if (order.Length != Rows || order.Any(i => (uint)i >= (uint)Rows) || order.Distinct().Count() != Rows)
            throw new ArgumentException($"{Name}: a row order must be a permutation of its {Rows} rows");
        return new QuantMatrix(this, _rowOrder is null ? order : order.Select(i => _rowOrder[i]).ToArray());
    }

    public byte* Row(int n) => (byte*)Data + (_rowOrder is null ? n : _rowOrder[n]) * RowBytes;

    /// <summary>The blocks of rows [first, first + count) as bytes (as stored: a matrix with a row order has none).</summary>
    public ReadOnlySpan<byte> RowBytesSpan(int first, int count) =>
        _rowOrder is null ? new(Row(first), checked((int)(RowBytes * count))) : throw new InvalidOperationException($"{Name}: rows are read in a permuted order");

    /// <summary>Rows [first, first + count) as float32 into dst (count × Cols values), ggml's dequantize_row_* values.</summary>
    public void Dequantize(int first, int count, float* dst)
    {
        if (first < 0 || count < 0 || first + count > Rows) throw new ArgumentOutOfRangeException(nameof(count));
        QuantDequant.Rows(this, first, count, dst);
    }

    /// <summary>Columns [col0, col0 + cols) of rows [first, first + count) as float32 into dst (count × cols values);
    /// the columns must be whole blocks.</summary>
    public void Dequantize(int first, int count, int col0, int cols, float* dst)
    {
        if (first < 0 || count < 0 || first + count > Rows) throw new ArgumentOutOfRangeException(nameof(count));
        if (col0 < 0 || cols < 0 || col0 + cols > Cols || col0 % BlockSize != 0 || cols % BlockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(cols), $"{Name}: columns [{col0}, {col0 + cols}) are not whole {BlockSize}-value blocks of its {Cols}");
        QuantDequant.Rows(this, first, count, dst, col0 / BlockSize, cols / BlockSize);
    }

    /// <summary>The whole matrix as float32 [Rows × Cols] (tests and small matrices).</summary>
    public float[] ToFloat()
    {
        var y = new float[(long)Rows * Cols];
        fixed (float* p = y) Dequantize(0, Rows, p);
        return y;
    }

    public override string ToString() => $"{Name} {Type} [{Rows}, {Cols}]";
}
