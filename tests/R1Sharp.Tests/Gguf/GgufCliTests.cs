using System.Text.Json;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Gguf;

/// <summary>`r1 export gguf` and `r1 import gguf` as a user runs them.</summary>
public sealed class GgufCliTests
{
    [Fact]
    public void ExportImportExportThroughTheCommandLine()
    {
        using var dir = new TempDir();
        string model = dir.File("tiny"), gguf = dir.File("tiny.gguf"), back = dir.File("back"), again = dir.File("again.gguf");
        var init = CliRunner.Run("init", "--arch", "qwen2", "--size", "tiny", "--tokenizer", SharedData.Path("tokenizers", "qwen3"), "--out", model);
        Assert.True(init.ExitCode == 0, init.Stderr);

        var export = CliRunner.Run("export", "gguf", "--model", model, "--out", gguf, "--type", "q8_0", "--json");
        Assert.True(export.ExitCode == 0, export.Stderr);
        using (var doc = JsonDocument.Parse(export.Stdout))
        {
            Assert.Equal("q8_0", doc.RootElement.GetProperty("type").GetString());
            Assert.Equal(new FileInfo(gguf).Length, doc.RootElement.GetProperty("bytes").GetInt64());
        }

        var import = CliRunner.Run("import", "gguf", "--gguf", gguf, "--out", back);
        Assert.True(import.ExitCode == 0, import.Stderr);
        var again2 = CliRunner.Run("export", "gguf", "--model", back, "--out", again, "--type", "q8_0");
        Assert.True(again2.ExitCode == 0, again2.Stderr);
        // Q8_0 values re-encode to the same blocks: the imported folder holds exactly what the blocks decode to.
        Assert.Equal(File.ReadAllBytes(gguf), File.ReadAllBytes(again));
    }

    [Fact]
    public void UnknownTypeAndMissingFileAreOneLineErrors()
    {
        using var dir = new TempDir();
        var badType = CliRunner.Run("export", "gguf", "--model", dir.Path, "--out", dir.File("x.gguf"), "--type", "q4_k");
        Assert.Equal(1, badType.ExitCode);
        Assert.Equal("error: unknown GGUF type \"q4_k\" (expected f32, bf16, f16, q8_0, q4_0, q6_k or q4_k_m)", badType.Stderr.Trim());

        var missing = CliRunner.Run("import", "gguf", "--gguf", dir.File("none.gguf"), "--out", dir.File("out"));
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("error: ", missing.Stderr);
        Assert.Contains("none.gguf", missing.Stderr);
        Assert.Single(missing.Stderr.Trim().Split('\n'));
    }
}
