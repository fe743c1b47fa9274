using System.Text.Json;
using R1Sharp.Text;

namespace R1Sharp.Tests.Cli;

/// <summary>The commands a newcomer meets first, run as a user runs them.</summary>
public class CliTests
{
    [Fact]
    public void InitThenGenerateProducesAHuggingFaceFolderAndAJsonCompletion()
    {
        using var dir = new TempDir();
        string model = dir.File("tiny");
        var init = CliRunner.Run("init", "--arch", "llama", "--size", "tiny", "--tokenizer", SharedData.Path("tokenizers", "qwen3"), "--out", model, "--seed", "3");
        Assert.True(init.ExitCode == 0, init.Stderr);
        foreach (var f in new[] { "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(model, f)), f);

        var gen = CliRunner.Run("generate", "--model", model, "--prompt", "What is 2+3?", "--max-tokens", "6", "--temperature", "0", "--json");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        using var doc = JsonDocument.Parse(gen.Stdout);
        var root = doc.RootElement;
        Assert.Equal(6, root.GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", root.GetProperty("finish_reason").GetString());
        Assert.Contains("<|im_start|>user\nWhat is 2+3?<|im_end|>", root.GetProperty("prompt").GetString());

        // Greedy decoding is repeatable across processes.
        var again = CliRunner.Run("generate", "--model", model, "--prompt", "What is 2+3?", "--max-tokens", "6", "--temperature", "0", "--json");
        using var doc2 = JsonDocument.Parse(again.Stdout);
        Assert.Equal(root.GetProperty("text").GetString(), doc2.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public void TokenizeMatchesTheLibrary()
    {
        string text = "Solve $x^2=4$: x = \\pm 2. 答案 🙂";
        var r = CliRunner.Run("tokenize", "--tokenizer", SharedData.Path("tokenizers", "deepseek_v3"), "--text", text, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(HfTokenizer.FromFolder(SharedData.Path("tokenizers", "deepseek_v3")).Encode(text), ids);
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("no-config")]
    [InlineData("bad-config")]
    [InlineData("no-weights")]
    [InlineData("truncated-weights")]
    public void ABrokenModelFolderIsOneClearLineAndANonZeroExit(string kind)
    {
        using var dir = new TempDir();
        string model = dir.File("m");
        if (kind != "missing")
        {
            var init = CliRunner.Run("init", "--size", "tiny", "--tokenizer", SharedData.Path("tokenizers", "qwen3"), "--out", model);
            Assert.Equal(0, init.ExitCode);
            string weights = Path.Combine(model, "model.safetensors");
            switch (kind)
            {
                case "no-config": File.Delete(Path.Combine(model, "config.json")); break;
                case "bad-config": File.WriteAllText(Path.Combine(model, "config.json"), "{\"model_type\": \"qwen2\", "); break;
                case "no-weights": File.Delete(weights); break;
                case "truncated-weights":
                    using (var f = File.OpenWrite(weights)) f.SetLength(f.Length / 2);
                    break;
            }
        }
        var r = CliRunner.Run("generate", "--model", model, "--prompt", "hi", "--max-tokens", "2");
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(kind == "truncated-weights" ? "model.safetensors" : "m", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}

public class VerifyCliTests
{
    [Fact]
    public void VerifyAnswersWithExitCodeAndJson()
    {
        var same = CliRunner.Run("verify", "--gold", "\\frac{1}{2}", "--pred", "Thus the answer is \\boxed{0.5}.");
        Assert.Equal(0, same.ExitCode);
        Assert.StartsWith("equal", same.Stdout);
        var different = CliRunner.Run("verify", "--gold", "10", "--pred", "\\boxed{11}", "--json");
        Assert.Equal(3, different.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(different.Stdout);
        Assert.False(doc.RootElement.GetProperty("equal").GetBoolean());
        Assert.Equal("11", doc.RootElement.GetProperty("extracted").GetString());
    }

    [Fact]
    public void VerifyFileGivesOneVerdictPerLineAndNamesABadLine()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("pairs.jsonl"), ["{\"gold\": \"3\", \"prediction\": \"\\\\boxed{3}\"}", "{\"gold\": 2, \"prediction\": \"x = 5\"}"]);
        var r = CliRunner.Run("verify", "--file", dir.File("pairs.jsonl"));
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("\"equal\":true", lines[0]);
        Assert.Contains("\"equal\":false", lines[1]);
        File.AppendAllText(dir.File("pairs.jsonl"), "{not json\n");
        var bad = CliRunner.Run("verify", "--file", dir.File("pairs.jsonl"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("pairs.jsonl:3", bad.Stderr);
    }
}
