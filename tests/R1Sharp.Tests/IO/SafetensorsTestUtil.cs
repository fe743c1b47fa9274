using System.Buffers.Binary;
using System.Text;
using TorchSharp;

namespace R1Sharp.Tests.IO;

/// <summary>Builds tensors from exact bit patterns and safetensors files from raw parts (to corrupt them at will).</summary>
static class SafetensorsTestUtil
{
    public static torch.Tensor FromBytes(byte[] bytes, torch.ScalarType type, params long[] shape)
    {
        var t = torch.empty(shape, type);
        t.bytes = bytes; // sets raw memory; torch.frombuffer would convert values instead
        return t;
    }

    public static torch.Tensor Bf16Bits(ushort[] bits, params long[] shape)
    {
        var bytes = new byte[bits.Length * 2];
        for (int i = 0; i < bits.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), bits[i]);
        return FromBytes(bytes, torch.ScalarType.BFloat16, shape);
    }

    public static torch.Tensor F32Bits(uint[] bits, params long[] shape)
    {
        var bytes = new byte[bits.Length * 4];
        for (int i = 0; i < bits.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * i), bits[i]);
        return FromBytes(bytes, torch.ScalarType.Float32, shape);
    }

    public static byte[] Bytes(torch.Tensor t) => t.contiguous().bytes.ToArray();

    /// <summary>Same dtype, shape and bits (torch.equal is elementwise in TorchSharp and NaN != NaN).</summary>
    public static bool BitEqual(torch.Tensor a, torch.Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && Bytes(a).AsSpan().SequenceEqual(Bytes(b));

    /// <summary>Writes 8-byte length + header text + data, with the length field overridable to fake corruption.</summary>
    public static void WriteRaw(string path, string headerJson, byte[] data, ulong? headerLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, headerLength ?? (ulong)header.Length);
        File.WriteAllBytes(path, [.. length, .. header, .. data]);
    }

    public static R1SharpException OpenFails(string path)
    {
        var e = Assert.Throws<R1SharpException>(() => R1Sharp.IO.SafetensorsFile.Open(path).Dispose());
        Assert.Contains(Path.GetFileName(path), e.Message);
        return e;
    }
}
