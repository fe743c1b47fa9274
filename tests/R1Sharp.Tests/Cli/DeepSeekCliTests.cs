using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Serving;
using R1Sharp.Tests.Models;
using R1Sharp.Text;
using static R1Sharp.Tests.Serving.ServingTestKit;

namespace R1Sharp.Tests.Cli;

/// <summary>The tools on the DeepSeek family: `r1 init` by preset, by config.json and in FP8; generate, chat, eval and
/// an OpenAI-compatible server with concurrent clients, on a tiny V3 with DeepSeek-V3's tokenizer and R1's template.</summary>
public class DeepSeekCliTests
{
    static string Tokenizer => SharedData.Path("tokenizers", "deepseek_v3");

    static JsonElement Ok(CliRunner.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    [Fact]
    public async Task InitGenerateChatAndEvalRunOnDeepSeekV3()
    {
        using var dir = new TempDir();
        string model = dir.File("v3");
        var init = Ok(CliRunner.Run("init", "--arch", "deepseek_v3", "--size", "tiny", "--tokenizer", Tokenizer, "--out", model, "--json", "--seed", "3"));
        Assert.Equal("deepseek_v3", init.GetProperty("arch").GetString());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!;
        Assert.Equal("DeepseekV3ForCausalLM", (string?)config["architectures"]![0]);
        Assert.Equal("noaux_tc", (string?)config["topk_method"]);

        var gen = Ok(CliRunner.Run("generate", "--model", model, "--prompt", "What is 2+3?", "--max-tokens", "5", "--temperature", "0", "--json"));
        Assert.Equal(5, gen.GetProperty("completion_tokens").GetInt32());

        var eval = Ok(CliRunner.Run("eval", "--bench", "math500", "--bench-dir", SharedData.Path("benchmarks"), "--model", model,
            "--limit", "2", "--k", "2", "--max-tokens", "6", "--out", dir.File("eval"), "--json"));
        Assert.Equal(4, eval.GetProperty("samples").GetInt32());

        // r1 chat: two turns on stdin, then end of input.
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "r1.dll"), "chat", "--model", model, "--max-tokens", "4", "--temperature", "0" }) psi.ArgumentList.Add(a);
        using var chat = Process.Start(psi)!;
        var stdout = chat.StandardOutput.ReadToEndAsync();
        var stderr = chat.StandardError.ReadToEndAsync();
        chat.StandardInput.WriteLine("What is 2+3?");
        chat.StandardInput.WriteLine("And 4+4?");
        chat.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try { await chat.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { chat.Kill(entireProcessTree: true); Assert.Fail("r1 chat did not finish within 3 minutes"); }
        string output = await stdout;
        Assert.True(chat.ExitCode == 0, await stderr);
        Assert.Contains("deepseek_v3", output);
        Assert.Equal(3, output.Split("> ").Length - 1); // two answered prompts, then the one that met end of input
    }

    /// <summary>`r1 init --config`: any supported config.json (here V2-Lite's, shrunk) gives random weights of its
    /// shape, every key kept; `--dtype fp8` writes DeepSeek's FP8 layout, and a config that asks for FP8 gets it.</summary>
    [Fact]
    public void InitFromAConfigFileAndInFp8()
    {
        using var dir = new TempDir();
        var raw = (JsonObject)JsonNode.Parse(DeepSeekConfigTests.DeepSeekV2Lite)!;
        foreach (var (k, v) in new (string, int)[] { ("hidden_size", 64), ("num_hidden_layers", 2), ("intermediate_size", 96), ("moe_intermediate_size", 32),
                     ("num_attention_heads", 2), ("kv_lora_rank", 32), ("qk_nope_head_dim", 16), ("qk_rope_head_dim", 8), ("v_head_dim", 16), ("n_routed_experts", 8), ("vocab_size", 129280) })
            raw[k] = v;
        string configFile = dir.File("config.json");
        File.WriteAllText(configFile, raw.ToJsonString());
        string model = dir.File("v2");
        var init = Ok(CliRunner.Run("init", "--config", configFile, "--tokenizer", Tokenizer, "--out", model, "--json"));
        Assert.Equal("deepseek_v2", init.GetProperty("arch").GetString());
        var written = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!;
        foreach (var (key, value) in raw)
            if (key != "torch_dtype") Assert.True(DeepSeekConfigTests.Same(value, written[key]), $"{key}: {value?.ToJsonString()} → {written[key]?.ToJsonString()}");
        using (var m = ModelFolder.Load(model)) Assert.Equal(8, ((DeepseekV3Config)m.Config).NRoutedExperts);

        var both = CliRunner.Run("init", "--config", configFile, "--arch", "qwen2", "--tokenizer", Tokenizer, "--out", dir.File("x"));
        Assert.NotEqual(0, both.ExitCode);
        Assert.Contains("--config replaces --arch and --size", both.Stderr);

        // FP8 asked for by a config.json that carries quantization_config, as R1's does (--dtype fp8 takes the same path).
        raw["quantization_config"] = JsonNode.Parse("""{"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}""");
        File.WriteAllText(configFile, raw.ToJsonString());
        Assert.True(Ok(CliRunner.Run("init", "--config", configFile, "--tokenizer", Tokenizer, "--out", dir.File("fp8b"), "--json")).GetProperty("fp8").GetBoolean());
        Assert.Equal("e4m3", (string?)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("fp8b"), "config.json")))!["quantization_config"]!["fmt"]);
        Assert.Equal(5, Ok(CliRunner.Run("generate", "--model", dir.File("fp8b"), "--prompt", "Hi", "--max-tokens", "5", "--temperature", "0", "--json")).GetProperty("completion_tokens").GetInt32());
    }

    /// <summary>`r1 serve` on a DeepSeek model: concurrent greedy chats through continuous batching (rows joining at
    /// different steps over the latent cache) match the in-process engine's answers.</summary>
    [Fact]
    public async Task ServeAnswersConcurrentChatsAsTheInProcessEngine()
    {
        using var dir = new TempDir();
        string folder = dir.File("v3");
        var tok = HfTokenizer.FromFolder(Tokenizer);
        using (var m = CausalLM.Create(DeepseekV3Config.Preset("tiny", (tok.VocabSize + 63) / 64 * 64) with { EosTokenIds = [tok.EosTokenId!.Value] }))
        {
            m.InitializeRandom(9, std: 0.5);
            ModelFolder.Save(m, folder, Tokenizer);
        }
        await using var server = await Start(OpenAiServer.FromFolder(folder, Options(maxBatch: 3, context: 256)));
        using var lm = LocalModel.Load(folder);
        string[] questions = ["What is 2 + 2?", "Hi", "Name a prime number larger than ten, please."];
        var answers = await Task.WhenAll(questions.Select(q => Post(server, "/v1/chat/completions", new JsonObject
        {
            ["model"] = server.Model.Name, ["temperature"] = 0, ["max_tokens"] = 12,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = q }),
        }.ToJsonString())));
        for (int i = 0; i < questions.Length; i++)
        {
            Assert.Equal(200, answers[i].Status);
            var message = answers[i].Body["choices"]![0]!["message"]!;
            var (prompt, opens) = lm.RenderChat([new ChatMessage("user", questions[i])]);
            var expected = lm.Generator.Generate([prompt], new SamplingOptions { Temperature = 0, MaxTokens = 12 }, opens)[0];
            Assert.Equal(expected.Answer, (string?)message["content"] ?? "");
            Assert.Equal(expected.Reasoning ?? "", (string?)message["reasoning_content"] ?? "");
        }
    }
}
