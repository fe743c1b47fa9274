using System.IO.MemoryMappedFiles;
using R1Sharp.Kernels;

namespace R1Sharp.IO;

/// <summary>
/// A GGUF file mapped into memory read-only: its tensors' data are addressed in place, so quantized weights are used
/// in their block formats without a copy (the pages are the OS's file cache, shared between processes, and read from
/// disk on first touch). The header is parsed (and checked: truncation, overlapping tensors) by <see cref="GgufFile"/>.
/// Every pointer and <see cref="QuantMatrix"/> handed out is valid until Dispose.
/// </summary>
public sealed unsafe class GgufMapping : IDisposable
{
    public GgufFile File { get; }
    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly byte* _base;
    readonly long _length;
    bool _disposed;

    GgufMapping(GgufFile file, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* start, long length)
    {
        File = file; _map = map; _view = view; _base = start; _length = length;
    }

    /// <param name="skipArrays">metadata arrays not to read (<see cref="GgufFile.Open"/>)</param>
    public static GgufMapping Open(string path, Func<string, bool>? skipArrays = null)
    {
        var file = GgufFile.Open(path, skipArrays);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            long length = new FileInfo(path).Length;
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            return new GgufMapping(file, map, view, p + view.PointerOffset, length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            view?.Dispose(); map?.Dispose(); file.Dispose();
            throw new R1SharpException($"{path}: cannot map GGUF file: {e.Message}", e);
        }
        catch { view?.Dispose(); map?.Dispose(); file.Dispose(); throw; }
    }

    /// <summary>Address of a tensor's first byte (its size is <see cref="GgufTensorInfo.ByteSize"/>).</summary>
    public byte* Pointer(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long at = File.DataStart + (long)t.Offset;
        if (at < 0 || at + t.ByteSize > _length)
            throw new R1SharpException($"{File.Path}: tensor {Excerpt.Quote(t.Name)} lies outside the file");
        return _base + at;
    }

    /// <summary>A tensor's bytes (under 2 GB).</summary>
    public ReadOnlySpan<byte> Bytes(GgufTensorInfo t) => new(Pointer(t), checked((int)t.ByteSize));

    /// <summary>
    /// A 2-D quantized tensor as a matrix [ne[1], ne[0]] read in place. Errors name the file and tensor: missing,
    /// not 2-D, a format the kernels do not read, or rows that are not whole blocks.
    /// </summary>
    public QuantMatrix Matrix(string name)
    {
        var t = File.Tensor(name);
        if (!GgmlTypeInfo.IsKnown(t.Type))
            throw new R1SharpException($"{File.Path}: tensor {Excerpt.Quote(name)} has ggml type {(uint)t.Type} ({t.Type}), which R1Sharp does not read (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)");
        if (t.Dims.Length != 2)
            throw new R1SharpException($"{File.Path}: tensor {Excerpt.Quote(name)} has {t.Dims.Length} dimensions [{string.Join(", ", t.Dims)}]; a weight matrix has 2");
        if (t.Dims[0] > int.MaxValue || t.Dims[1] > int.MaxValue)
            throw new R1SharpException($"{File.Path}: tensor {Excerpt.Quote(name)} is too large ([{string.Join(", ", t.Dims)}])");
        QuantMatrix m;
        try { m = new QuantMatrix(name, t.Type, (int)t.Dims[1], (int)t.Dims[0], (nint)Pointer(t), this); }
        catch (R1SharpException e) { throw new R1SharpException($"{File.Path}: {e.Message}", e); }
        CheckExtent(t);
        return m;
    }

    /// <summary>
    /// Refuses a tensor whose header type or shape cannot be right: GgufFile refuses one that runs into the next
    /// tensor; one that stops a whole alignment unit or more short of it is as surely mislabelled (writers pad each
    /// tensor to the alignment, no more), e.g. Q8_0 data labelled Q4_K, or F32 data labelled F16.
    /// </summary>
    public void CheckExtent(GgufTensorInfo t)
    {
        if (NextOffset(t) is { } next && (long)t.Offset + t.ByteSize + File.Alignment <= (long)next)
            throw new R1SharpException($"{File.Path}: tensor {Excerpt.Quote(t.Name)} ({t.Type}, [{string.Join(", ", t.Dims)}]) should take {t.ByteSize} bytes, but the next tensor starts {(long)next - (long)t.Offset} bytes after it; its type or shape in the header is wrong");
    }

    ulong? NextOffset(GgufTensorInfo t)
    {
        ulong? next = null;
        foreach (var o in File.Tensors)
            if (o.Offset > t.Offset && (next == null || o.Offset < next)) next = o.Offset;
        return next;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
        File.Dispose();
    }
}
