using R1Sharp.IO;
using TorchSharp;
using static R1Sharp.Tests.IO.SafetensorsTestUtil;

namespace R1Sharp.Tests.IO;

/// <summary>
/// Checks against Fixtures/safetensors/reference.safetensors, written by make_fixture.py from the spec with
/// Python's struct and json only: an implementation that shares no code with ours.
/// </summary>
public class SafetensorsFixtureTests
{
    static string FixturePath => Path.Combine(AppContext.BaseDirectory, "Fixtures", "safetensors", "reference.safetensors");

    static readonly string[] Order = ["f32", "bf16", "f16", "f64", "i64", "i32", "i16", "i8", "u8", "bool", "scalar", "empty"];

    [Fact]
    public void ReadsEveryTensorOfTheReferenceFile()
    {
        using var f = SafetensorsFile.Open(FixturePath);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal("make_fixture.py", f.Metadata["source"]);
        Assert.Equal(Order.Order(), f.Entries.Keys.Order());

        using (var t = f.Read("f32"))
        {
            Assert.Equal(new long[] { 2, 3 }, t.shape);
            var bits = t.data<float>().ToArray().Select(BitConverter.SingleToUInt32Bits).ToArray();
            Assert.Equal(new uint[] { 0x3FC00000, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001, 0x7FC00001 }, bits);
        }
        using (var t = f.Read("bf16"))
            Assert.Equal(Bytes(Bf16Bits([0x3F80, 0xC020, 0x8000, 0x0001, 0x7FC1, 0xFF80], 2, 3)), Bytes(t));
        using (var t = f.Read("bf16", torch.ScalarType.Float32))
        {
            var v = t.data<float>().ToArray();
            Assert.Equal([1.0f, -2.5f], v[..2]);
            Assert.Equal(0x80000000u, BitConverter.SingleToUInt32Bits(v[2]));
            Assert.Equal(0x00010000u, BitConverter.SingleToUInt32Bits(v[3])); // bf16 subnormal widens exactly
            Assert.True(float.IsNaN(v[4]));
            Assert.Equal(float.NegativeInfinity, v[5]);
        }
        using (var t = f.Read("f16", torch.ScalarType.Float32))
            Assert.Equal([0.5f, -65504f, MathF.Pow(2, -24)], t.data<float>().ToArray());
        using (var t = f.Read("f64")) Assert.Equal([Math.PI, -1e300], t.data<double>().ToArray());
        using (var t = f.Read("i64")) Assert.Equal([-1L, (1L << 40) + 3], t.data<long>().ToArray());
        using (var t = f.Read("i32")) Assert.Equal([-7, int.MaxValue], t.data<int>().ToArray());
        using (var t = f.Read("i16")) Assert.Equal([(short)-32768, (short)12345], t.data<short>().ToArray());
        using (var t = f.Read("i8")) Assert.Equal([(sbyte)-128, (sbyte)127], t.data<sbyte>().ToArray());
        using (var t = f.Read("u8")) Assert.Equal([(byte)0, 1, 127, 255], t.data<byte>().ToArray());
        using (var t = f.Read("bool")) Assert.Equal([true, false, true], t.data<bool>().ToArray());
        using (var t = f.Read("scalar"))
        {
            Assert.Empty(t.shape);
            Assert.Equal(42f, t.item<float>());
        }
        using (var t = f.Read("empty")) Assert.Equal(new long[] { 0, 3 }, t.shape);
    }

    [Fact]
    public void WriterReproducesTheReferenceFileByteForByte()
    {
        var tensors = new List<KeyValuePair<string, torch.Tensor>>();
        using (var f = SafetensorsFile.Open(FixturePath))
            foreach (string name in Order) tensors.Add(new(name, f.Read(name)));
        using var dir = new TempDir();
        string path = dir.File("copy.safetensors");
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["source"] = "make_fixture.py" });
        Assert.Equal(File.ReadAllBytes(FixturePath), File.ReadAllBytes(path));
        foreach (var kv in tensors) kv.Value.Dispose();
    }
}
