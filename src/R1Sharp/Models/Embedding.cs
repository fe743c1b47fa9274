using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// nn.Embedding with HF's parameter name (weight [vocab, hidden]): a lookup of rows by token id. As with
/// <see cref="Linear"/>, the matrix is a dense parameter or, attached by a GGUF load, a quantized one read in place
/// (GGUF files store token_embd in Q4_K, Q6_K or Q8_0): a lookup then dequantises only the rows it selects, to ggml's
/// values, so no float copy of the table is ever made.
/// </summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    /// <summary>The dense table, or null when the module holds a quantized one (a field named as the parameter, see
    /// <see cref="Linear.weight"/>).</summary>
    public TorchSharp.Modules.Parameter? weight;
    QuantMatrix? quantized;
    RowReader? rowReader;
    readonly ScalarType dtype;

    /// <summary>Copies rows [first, first + count) of a quantized table's blocks into dst (count × RowBytes bytes).</summary>
    public delegate void RowReader(int first, int count, Span<byte> dst);

    public long NumEmbeddings { get; }
    public long EmbeddingDim { get; }

    public Embedding(long numEmbeddings, long embeddingDim, ScalarType dtype = ScalarType.Float32) : base("Embedding")
    {
        NumEmbeddings = numEmbeddings; EmbeddingDim = embeddingDim; this.dtype = dtype;
        if (DeferredWeights.Active) return;
        weight = new TorchSharp.Modules.Parameter(zeros(numEmbeddings, embeddingDim, dtype: dtype));
        register_parameter("weight", weight);
    }

    public QuantMatrix? Quantized => quantized;

    /// <summary>Whether lookups copy rows out of the file (<see cref="AttachRowReader"/>) rather than read the map.</summary>
    public bool ReadsRowsFromFile => rowReader is not null;

    /// <summary>The table as a matrix [vocab, hidden]: what a tied output projection multiplies by.</summary>
    public LinearWeight Weight => quantized is { } q ? q
        : weight is { } w ? w : throw new InvalidOperationException($"Embedding [{NumEmbeddings}, {EmbeddingDim}] has no weight attached");

    /// <summary>The type of the vectors looked up: the dense table's, or for a quantized table the type the model was
    /// built in.</summary>
    public ScalarType DType => weight?.dtype ?? dtype;
    public Device Device => weight?.device ?? CPU;

    /// <summary>Rows of the table for token ids of any shape: [..., hidden]. The dense lookup is index_select, which is
    /// what libtorch's embedding() does, and whose gradient (index_add) sums a repeated id's rows in the same order as
    /// embedding's backward.</summary>
    public override Tensor forward(Tensor ids)
    {
        long[] shape = [.. ids.shape, EmbeddingDim];
        if (quantized is null) return weight!.index_select(0, ids.reshape(-1)).view(shape);
        return Lookup(ids, quantized).view(shape);
    }

    unsafe Tensor Lookup(Tensor ids, QuantMatrix m)
    {
        using var flat = ids.reshape(-1).to(ScalarType.Int64).cpu().contiguous();
        var rows = flat.data<long>().ToArray();
        var y = empty(rows.Length, EmbeddingDim, dtype: ScalarType.Float32);
        float* dst = (float*)TensorMemory.Address(y);
        // With a row reader, each row's blocks are copied out of the file into one small buffer and dequantised from
        // there, so the table's pages never enter this process (see AttachRowReader).
        byte[]? buffer = rowReader is null ? null : GC.AllocateUninitializedArray<byte>(checked((int)m.RowBytes), pinned: true);
        var one = buffer is null ? null : new QuantMatrix(m.Name, m.Type, 1, m.Cols, (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)), buffer);
        for (int i = 0; i < rows.Length; i++)
        {
            if ((ulong)rows[i] >= (ulong)m.Rows) throw new IndexOutOfRangeException($"token id {rows[i]} is outside the embedding table of {m.Rows} rows");
            if (one is null) { m.Dequantize((int)rows[i], 1, dst + i * EmbeddingDim); continue; }
            rowReader!((int)rows[i], 1, buffer);
            one.Dequantize(0, 1, dst + i * EmbeddingDim);
        }
        GC.KeepAlive(m);
        if (dtype == ScalarType.Float32) return y;
        using (y) return y.to(dtype);
    }

    /// <summary>Holds <paramref name="matrix"/> (inference only) in place of a dense table, which is released.</summary>
    public void Attach(QuantMatrix matrix)
    {
        CheckShape(matrix.Rows, matrix.Cols, matrix.Name);
        ReleaseDense();
        quantized = matrix;
        rowReader = null;
    }

    /// <summary>
    /// Lookups copy the quantized table's rows with <paramref name="reader"/> (a positional read of the file) instead of
    /// reading them through the memory map: a table that no output projection multiplies by (untied embeddings) is read
    /// one row per token, and through the map every row looked up faults in the pages around it, which then stay
    /// resident (66 MB of Q4_K_M's 137 MB table after 1,500 tokens of the 1.5B shape, all of it in a long-running
    /// server), for a copy of a few hundred bytes per token. The matrix stays attached for anything that reads it whole.
    /// </summary>
    public void AttachRowReader(RowReader reader)
    {
        if (quantized is null) throw new InvalidOperationException("a row reader serves a quantized table; attach one first");
        rowReader = reader;
    }

    /// <summary>Holds <paramref name="dense"/> [vocab, hidden] as the table parameter (it is not copied).</summary>
    public void Attach(Tensor dense)
    {
        CheckShape(dense.size(0), dense.size(1), "dense table");
        ReleaseDense();
        quantized = null;
        rowReader = null;
        weight = new TorchSharp.Modules.Parameter(dense);
        register_parameter("weight", weight);
    }

    void CheckShape(long rows, long cols, string what)
    {
        if (rows != NumEmbeddings || cols != EmbeddingDim)
            throw new R1SharpException($"{what}: shape [{rows}, {cols}] does not fit an embedding table [{NumEmbeddings}, {EmbeddingDim}]");
    }

    void ReleaseDense()
    {
        if (weight is null) return;
        ConditionallyRegisterParameter("weight", (Tensor)null!);
        weight.Dispose();
        weight = null;
    }
}
