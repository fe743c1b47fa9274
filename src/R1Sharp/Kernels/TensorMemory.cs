using System.Runtime.InteropServices;
using TorchSharp;

namespace R1Sharp.Kernels;

/// <summary>
/// A tensor's own memory, for the kernels that work on it directly and for file I/O that reads into and writes from
/// tensors without an intermediate byte[] the size of the tensor.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 has no public data_ptr(), and <c>Tensor.bytes</c> is a span, limited to int.MaxValue bytes: a
/// float32 lm_head of a 7B Qwen model is 2.18 GB. <see cref="Address"/> asks LibTorchSharp for the pointer itself;
/// <see cref="ForEachChunk"/> walks the memory as spans of a few MB.
/// </remarks>
internal static class TensorMemory
{
    /// <summary>Chunk size for file I/O: large enough for full disk speed, small enough to stay out of the way.</summary>
    public const int ChunkBytes = 4 << 20;

    [DllImport("LibTorchSharp")]
    static extern nint THSTensor_data(nint handle);

    /// <summary>The address of the first element of a CPU tensor's data (native memory: the GC never moves it),
    /// storage offset included, for tensors of any size. The caller keeps the tensor alive while it uses the address.</summary>
    public static nint Address(torch.Tensor t)
    {
        nint p = THSTensor_data(t.Handle);
        if (p == 0 && t.numel() > 0) throw new InvalidOperationException("tensor data is not addressable (device tensor or undefined storage)");
        return p;
    }

    public delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>True when <paramref name="t"/>'s bytes can be read or written in place.</summary>
    public static bool IsDirect(torch.Tensor t) => t.device_type == DeviceType.CPU && t.is_contiguous();

    public static long ByteCount(torch.Tensor t) => t.numel() * t.element_size();

    /// <summary>Calls <paramref name="action"/> on consecutive spans covering all of a contiguous CPU tensor.</summary>
    public static unsafe void ForEachChunk(torch.Tensor t, ChunkAction action)
    {
        if (!IsDirect(t)) throw new InvalidOperationException("tensor memory is only addressable for contiguous CPU tensors");
        long bytes = ByteCount(t);
        if (bytes == 0) return;
        long elementSize = t.element_size();
        long perChunk = Math.Max(elementSize, ChunkBytes / elementSize * elementSize);
        byte* start = (byte*)Address(t);
        for (long offset = 0; offset < bytes; offset += perChunk)
            action(new Span<byte>(start + offset, (int)Math.Min(perChunk, bytes - offset)), offset);
        GC.KeepAlive(t);
    }
}
