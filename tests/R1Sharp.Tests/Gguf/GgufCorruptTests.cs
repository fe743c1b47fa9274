using R1Sharp.IO;

namespace R1Sharp.Tests.Gguf;

/// <summary>A GGUF whose header lengths are corrupted: the error is one short line that quotes at most an escaped
/// excerpt of what the file holds, never its raw bytes (NULs, terminal escape codes, megabytes of tensor data).</summary>
public class GgufCorruptTests
{
    /// <summary>A small valid GGUF whose tensor data is 800 KB of bytes a terminal must never see raw.</summary>
    static byte[] File(TempDir dir)
    {
        string path = dir.File("ok.gguf");
        var data = new byte[200_000 * 4];
        for (int i = 0; i < data.Length; i++) data[i] = "\0\u001b[31m\u0007\r"u8[i % 8];
        new GgufWriter().Add("general.architecture", GgufValue.Str("qwen2"))
            .AddTensor(new GgufTensorSpec("token_embd.weight", [1000, 200], GgmlType.F32, s => s.Write(data)))
            .Write(path);
        return System.IO.File.ReadAllBytes(path);
    }

    [Theory]
    [InlineData(18_000_000UL, "past the end of the file")]   // the case: longer than the rest of the file
    [InlineData(100_000UL, "at most 65,535")]                // within the file, longer than any GGUF key may be
    [InlineData(ulong.MaxValue, "past the end of the file")]
    public void ACorruptKeyLength_IsOneShortEscapedLine(ulong length, string expected)
    {
        using var dir = new TempDir();
        var bytes = File(dir);
        BitConverter.TryWriteBytes(bytes.AsSpan(24, 8), length); // magic, version, tensor count, key count, then the first key's length
        string path = dir.File("corrupt.gguf");
        System.IO.File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<R1SharpException>(() => GgufFile.Open(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains("metadata key at byte 24", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.True(e.Message.Length < 300, $"{e.Message.Length} characters");
        Assert.DoesNotContain(e.Message, c => char.IsControl(c));
    }

    [Fact]
    public void ACorruptValueType_QuotesTheKeyEscaped()
    {
        // A key of control bytes followed by an unknown value type: the key appears escaped and cut, not raw.
        using var dir = new TempDir();
        string path = dir.File("odd.gguf");
        string key = "\u001b]0;pwned\u0007" + new string('k', 5000);
        new GgufWriter().Add(key, GgufValue.Str("x")).Write(path);
        var bytes = System.IO.File.ReadAllBytes(path);
        int typeAt = 24 + 8 + System.Text.Encoding.UTF8.GetByteCount(key);
        BitConverter.TryWriteBytes(bytes.AsSpan(typeAt, 4), 99u);
        System.IO.File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<R1SharpException>(() => GgufFile.Open(path));
        Assert.Contains("unknown value type 99", e.Message);
        Assert.Contains("\\u001b]0;pwned\\u0007", e.Message);
        Assert.True(e.Message.Length < 300, $"{e.Message.Length} characters");
        Assert.DoesNotContain(e.Message, c => char.IsControl(c));
    }
}
