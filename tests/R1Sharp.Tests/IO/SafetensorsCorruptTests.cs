using R1Sharp.IO;
using static R1Sharp.Tests.IO.SafetensorsTestUtil;

namespace R1Sharp.Tests.IO;

/// <summary>Each kind of corrupt file gives one R1SharpException naming the file and, where it applies, the tensor.</summary>
public class SafetensorsCorruptTests : IDisposable
{
    readonly TempDir _dir = new();
    string PathOf => _dir.File("bad.safetensors");
    public void Dispose() => _dir.Dispose();

    static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    [Fact]
    public void ShorterThanTheLengthField()
    {
        File.WriteAllBytes(PathOf, [1, 2, 3]);
        var e = OpenFails(PathOf);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("3 bytes", e.Message);
    }

    [Fact]
    public void AbsurdHeaderLength()
    {
        WriteRaw(PathOf, "{}", [], headerLength: 0x7000_0000_0000_0000);
        Assert.Contains("absurd", OpenFails(PathOf).Message);
    }

    [Fact]
    public void ShorterThanTheHeader()
    {
        WriteRaw(PathOf, "{\"a\":", [], headerLength: 400);
        var e = OpenFails(PathOf);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("400", e.Message);
    }

    [Fact]
    public void BadHeaderJson()
    {
        WriteRaw(PathOf, "{\"w\": {\"dtype\": \"F32\",", []);
        Assert.Contains("bad header JSON", OpenFails(PathOf).Message);
    }

    [Fact]
    public void HeaderThatIsNotAnObject()
    {
        WriteRaw(PathOf, "[1, 2]", []);
        Assert.Contains("bad header JSON", OpenFails(PathOf).Message);
    }

    [Fact]
    public void ShorterThanTheDataOffsets()
    {
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("model.w", "F32", "[2,3]", 8, 32) + "}", new byte[20]);
        var e = OpenFails(PathOf);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("'model.w'", e.Message);
    }

    [Fact]
    public void OverlappingTensors()
    {
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[4]", 0, 16) + "," + Entry("b", "F32", "[4]", 8, 24) + "}", new byte[24]);
        var e = OpenFails(PathOf);
        Assert.Contains("overlaps", e.Message);
        Assert.Contains("'a'", e.Message);
        Assert.Contains("'b'", e.Message);
    }

    [Fact]
    public void GapBetweenTensors()
    {
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 16, 24) + "}", new byte[24]);
        var e = OpenFails(PathOf);
        Assert.Contains("gap", e.Message);
        Assert.Contains("'b'", e.Message);
    }

    [Fact]
    public void TrailingBytesAfterTheLastTensor()
    {
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[2]", 0, 8) + "}", new byte[12]);
        Assert.Contains("trailing", OpenFails(PathOf).Message);
    }

    [Fact]
    public void ByteCountDisagreesWithShapeAndDType()
    {
        WriteRaw(PathOf, "{" + Entry("emb", "BF16", "[2,3]", 0, 24) + "}", new byte[24]);
        var e = OpenFails(PathOf);
        Assert.Contains("'emb'", e.Message);
        Assert.Contains("24 bytes", e.Message);
        Assert.Contains("needs 12", e.Message);
    }

    [Fact]
    public void OffsetsThatEndBeforeTheyBegin()
    {
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[0]", 8, 0) + "}", new byte[8]);
        Assert.Contains("'a'", OpenFails(PathOf).Message);
    }

    [Fact]
    public void NegativeOrFractionalShape()
    {
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[-2]", 0, 8) + "}", new byte[8]);
        Assert.Contains("non-negative integers", OpenFails(PathOf).Message);
        WriteRaw(PathOf, "{" + Entry("a", "F32", "[2.5]", 0, 8) + "}", new byte[8]);
        Assert.Contains("non-negative integers", OpenFails(PathOf).Message);
    }

    [Fact]
    public void UnknownDType()
    {
        WriteRaw(PathOf, "{" + Entry("w", "F33", "[2]", 0, 8) + "}", new byte[8]);
        var e = OpenFails(PathOf);
        Assert.Contains("unknown dtype 'F33'", e.Message);
        Assert.Contains("'w'", e.Message);
    }

    [Fact]
    public void NonStringMetadata()
    {
        WriteRaw(PathOf, "{\"__metadata__\":{\"step\":3}," + Entry("w", "F32", "[2]", 0, 8) + "}", new byte[8]);
        Assert.Contains("'step'", OpenFails(PathOf).Message);
    }

    [Fact]
    public void DuplicateTensorName()
    {
        WriteRaw(PathOf, "{" + Entry("w", "F32", "[1]", 0, 4) + "," + Entry("w", "F32", "[1]", 4, 8) + "}", new byte[8]);
        Assert.Contains("twice", OpenFails(PathOf).Message);
    }

    [Fact]
    public void ValidDTypeThatTorchSharpLacksFailsOnlyWhenRead()
    {
        // DeepSeek-V3's released weights are FP8: the header must parse so the other tensors stay readable.
        WriteRaw(PathOf, "{" + Entry("q", "F8_E4M3", "[4]", 0, 4) + "," + Entry("s", "F32", "[1]", 4, 8) + "}", new byte[8]);
        using var f = SafetensorsFile.Open(PathOf);
        using (var s = f.Read("s")) Assert.Equal(0f, s.item<float>());
        var e = Assert.Throws<R1SharpException>(() => f.Read("q").Dispose());
        Assert.Contains("F8_E4M3", e.Message);
        Assert.Contains("'q'", e.Message);
        Assert.Contains("bad.safetensors", e.Message);
    }

    [Fact]
    public void MissingFile()
    {
        var e = Assert.Throws<R1SharpException>(() => SafetensorsFile.Open(_dir.File("nope.safetensors")));
        Assert.Contains("nope.safetensors", e.Message);
    }
}
