using TorchSharp;

namespace R1Sharp.IO;

/// <summary>
/// Walks a tensor's own memory as a series of byte spans, so files are read into and written from
/// tensors without an intermediate byte[] the size of the tensor.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 has no public data_ptr(); <c>Tensor.bytes</c> is a span over the native memory of a
/// contiguous CPU tensor but is limited to int.MaxValue bytes. Narrowing a flat view into pieces of a
/// few MB keeps every span small and works for tensors of any size.
/// </remarks>
internal static class TensorMemory
{
    /// <summary>Chunk size for file I/O: large enough for full disk speed, small enough to stay out of the way.</summary>
    public const int ChunkBytes = 4 << 20;

    public delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>True when <paramref name="t"/>'s bytes can be read or written in place.</summary>
    public static bool IsDirect(torch.Tensor t) => t.device_type == DeviceType.CPU && t.is_contiguous();

    public static long ByteCount(torch.Tensor t) => t.numel() * t.element_size();

    /// <summary>Calls <paramref name="action"/> on consecutive spans covering all of a contiguous CPU tensor.</summary>
    public static void ForEachChunk(torch.Tensor t, ChunkAction action)
    {
        if (!IsDirect(t)) throw new InvalidOperationException("tensor memory is only addressable for contiguous CPU tensors");
        long count = t.numel();
        if (count == 0) return;
        long elementSize = t.element_size();
        long perChunk = Math.Max(1, ChunkBytes / elementSize);
        using var _ = torch.no_grad();
        using var flat = t.detach().view(-1);
        for (long start = 0; start < count; start += perChunk)
        {
            long n = Math.Min(perChunk, count - start);
            using var piece = flat.narrow(0, start, n);
            action(piece.bytes, start * elementSize);
        }
    }
}
