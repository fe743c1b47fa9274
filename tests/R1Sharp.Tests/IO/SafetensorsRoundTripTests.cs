using System.Buffers.Binary;
using R1Sharp.IO;
using TorchSharp;
using static R1Sharp.Tests.IO.SafetensorsTestUtil;

namespace R1Sharp.Tests.IO;

public class SafetensorsRoundTripTests
{
    static readonly uint[] F32Specials =
    [
        0x00000000, 0x80000000,             // +0, -0
        0x7F800000, 0xFF800000,             // +inf, -inf
        0x00000001, 0x807FFFFF,             // smallest and largest-magnitude negative subnormal
        0x7FC00000, 0xFFC00001, 0x7F800001, // quiet NaN, negative NaN with payload, signalling NaN
        0x7F7FFFFF, 0x3F800000,             // max float, 1.0
    ];

    [Fact]
    public void F32RoundTripIsBitExactIncludingSpecialsAndRandomBits()
    {
        var rng = new Random(1);
        var bits = F32Specials.Concat(Enumerable.Range(0, 4085).Select(_ => (uint)rng.NextInt64(0, 1L << 32))).ToArray();
        using var dir = new TempDir();
        using var t = F32Bits(bits, 64, 64);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("w", t)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        using var back = f.Read("w");
        Assert.Equal(torch.ScalarType.Float32, back.dtype);
        Assert.Equal(new long[] { 64, 64 }, back.shape);
        Assert.Equal(Bytes(t), Bytes(back));
    }

    [Fact]
    public void Bf16RoundTripIsBitExactForAllSixtyFiveThousandPatterns()
    {
        var bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        using var dir = new TempDir();
        using var t = Bf16Bits(bits, 256, 256);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("w", t)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        Assert.Equal("BF16", f.Entries["w"].DType);
        using var back = f.Read("w");
        Assert.Equal(Bytes(t), Bytes(back));
    }

    [Fact]
    public void EveryReadableDTypeRoundTrips()
    {
        using var dir = new TempDir();
        var tensors = new Dictionary<string, torch.Tensor>
        {
            ["f64"] = torch.tensor(new[] { Math.PI, -0.0, double.Epsilon }),
            ["f16"] = torch.tensor(new float[] { 0.5f, -65504f, 5.96e-8f }).to(torch.ScalarType.Float16),
            ["i64"] = torch.tensor(new long[] { long.MinValue, -1, long.MaxValue }),
            ["i32"] = torch.tensor(new[] { int.MinValue, 7 }),
            ["i16"] = torch.tensor(new short[] { short.MinValue, 3 }),
            ["i8"] = torch.tensor(new sbyte[] { -128, 127 }),
            ["u8"] = torch.tensor(new byte[] { 0, 255 }),
            ["bool"] = torch.tensor(new[] { true, false, true }),
            ["scalar"] = torch.tensor(3.25f),
            ["empty"] = torch.empty(0, 5),
        };
        SafetensorsWriter.Write(dir.File("a.safetensors"), tensors);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        Assert.Equal(["F64", "F16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F32", "F32"], tensors.Keys.Select(k => f.Entries[k].DType));
        foreach (var (name, t) in tensors)
        {
            using var back = f.Read(name);
            Assert.Equal(t.dtype, back.dtype);
            Assert.Equal(t.shape, back.shape);
            Assert.Equal(Bytes(t), Bytes(back));
            t.Dispose();
        }
    }

    [Fact]
    public void HeaderIsSpacePaddedToEightBytesAndKeepsMetadata()
    {
        using var dir = new TempDir();
        string path = dir.File("a.safetensors");
        using var t = torch.ones(3);
        SafetensorsWriter.Write(path, [new("x", t)], new Dictionary<string, string> { ["format"] = "pt", ["note"] = "héllo" });
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8);
        Assert.Equal(8 + n + 12, bytes.Length);
        string json = System.Text.Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"héllo\"},\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", json);
        Assert.Equal("", json.TrimStart('{').Split('}').Last().Trim(' '));
        using var f = SafetensorsFile.Open(path);
        Assert.Equal("héllo", f.Metadata["note"]);
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void ReadConvertsBetweenFloatTypesAsTorchDoes()
    {
        using var dir = new TempDir();
        // 3M elements: the converting path crosses several 4 MB chunks.
        using var f32 = torch.randn(3, 1_000_000, generator: new torch.Generator(7));
        using var bf16 = f32.to(torch.ScalarType.BFloat16);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("f32", f32), new("bf16", bf16)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));

        using var asBf16 = torch.empty(3, 1_000_000, torch.ScalarType.BFloat16);
        f.ReadInto("f32", asBf16);
        Assert.Equal(Bytes(bf16), Bytes(asBf16));

        using var widened = f.Read("bf16", torch.ScalarType.Float32);
        using var expected = bf16.to(torch.ScalarType.Float32);
        Assert.Equal(Bytes(expected), Bytes(widened));
    }

    [Fact]
    public void StridedTensorsAreWrittenAndReadThroughACopy()
    {
        using var dir = new TempDir();
        using var source = torch.arange(12, dtype: torch.ScalarType.Float32).reshape(3, 4).t(); // [4, 3], not contiguous
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("t", source)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        using var storage = torch.zeros(3, 4, dtype: torch.ScalarType.BFloat16);
        using var destination = storage.t();
        f.ReadInto("t", destination);
        Assert.True(BitEqual(source.to(torch.ScalarType.BFloat16), destination));
    }

    [Fact]
    public void ReadIntoASliceOfALargerTensorTouchesOnlyThatSlice()
    {
        // e.g. one expert's weights loaded into a stacked [experts, ...] tensor: contiguous, but at a storage offset.
        using var dir = new TempDir();
        using var w = torch.randn(4, 5);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("w", w)]);
        using var stacked = torch.zeros(3, 4, 5);
        using var middle = stacked[1];
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        f.ReadInto("w", middle);
        Assert.True(BitEqual(w, middle));
        Assert.Equal(0f, stacked[0].abs().sum().item<float>());
        Assert.Equal(0f, stacked[2].abs().sum().item<float>());
    }

    [Fact]
    public void ReadIntoParameterThatRequiresGrad()
    {
        using var dir = new TempDir();
        using var w = torch.randn(5, 7);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("w", w)]);
        using var p = new TorchSharp.Modules.Parameter(torch.zeros(5, 7));
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        f.ReadInto("w", p);
        Assert.True(BitEqual(w, p));
        Assert.True(p.requires_grad);
    }

    [Fact]
    public void LargeTensorRoundTripsWithoutAWholeFileBuffer()
    {
        using var dir = new TempDir();
        string path = dir.File("big.safetensors");
        using var big = torch.randn(16L << 20, generator: new torch.Generator(3)); // 64 MB of float32

        long before = GC.GetAllocatedBytesForCurrentThread();
        SafetensorsWriter.Write(path, [new("big", big)]);
        using var f = SafetensorsFile.Open(path);
        using var back = torch.empty(16L << 20);
        f.ReadInto("big", back);
        long managed = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(64L << 20, f.Entries["big"].ByteCount);
        Assert.True(BitEqual(big, back));
        // Bytes went file <-> tensor memory directly: managed allocations stay far below the 64 MB moved.
        Assert.True(managed < 8 << 20, $"allocated {managed} managed bytes for a 64 MB round trip");
    }

    [Fact]
    public void WrongShapeDestinationNamesFileTensorAndBothShapes()
    {
        using var dir = new TempDir();
        using var t = torch.ones(2, 3);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("layer.w", t)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        using var wrong = torch.empty(3, 2);
        var e = Assert.Throws<R1SharpException>(() => f.ReadInto("layer.w", wrong));
        Assert.Contains("a.safetensors", e.Message);
        Assert.Contains("'layer.w'", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[3, 2]", e.Message);
    }

    [Fact]
    public void IntegerTensorIsNotSilentlyConvertedToFloat()
    {
        using var dir = new TempDir();
        using var t = torch.tensor(new long[] { 1, 2 });
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("ids", t)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        var e = Assert.Throws<R1SharpException>(() => f.Read("ids", torch.ScalarType.Float32).Dispose());
        Assert.Contains("'ids'", e.Message);
        Assert.Contains("I64", e.Message);
    }

    [Fact]
    public void UnknownTensorNameIsAClearError()
    {
        using var dir = new TempDir();
        using var t = torch.ones(1);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("x", t)]);
        using var f = SafetensorsFile.Open(dir.File("a.safetensors"));
        var e = Assert.Throws<R1SharpException>(() => f.Read("y").Dispose());
        Assert.Contains("'y'", e.Message);
        Assert.Contains("a.safetensors", e.Message);
    }

    [Fact]
    public void FailedWriteLeavesNeitherFileNorTemporary()
    {
        using var dir = new TempDir();
        string path = dir.File("a.safetensors");
        using var ok = torch.ones(2);
        using var complex = torch.ones(2, dtype: torch.ScalarType.ComplexFloat32);
        var e = Assert.Throws<R1SharpException>(() => SafetensorsWriter.Write(path, [new("ok", ok), new("c", complex)]));
        Assert.Contains("'c'", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));

        IEnumerable<KeyValuePair<string, torch.Tensor>> Failing()
        {
            yield return new("ok", ok);
            throw new InvalidOperationException("producer failed");
        }
        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, Failing()));
        Assert.Empty(Directory.GetFiles(dir.Path));

        // Failure after the data is written (the rename): the temporary is removed too.
        Directory.CreateDirectory(path);
        var rename = Assert.Throws<R1SharpException>(() => SafetensorsWriter.Write(path, [new("ok", ok)]));
        Assert.Contains("a.safetensors", rename.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
