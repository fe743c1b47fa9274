using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Serving;
using static R1Sharp.Tests.Serving.ServingTestKit;

namespace R1Sharp.Tests.Serving;

/// <summary>POST /update_weights_from_disk: what a trainer on another machine calls after saving a checkpoint.</summary>
public class WeightReloadTests
{
    static async Task<OpenAiServer> SlowServer(string folder, int delayMs)
    {
        var backend = new SlowBackend(new ModelBackend(ModelFolder.Load(folder), 2, 256), delayMs);
        return await Start(new OpenAiServer(Served("tiny"), backend, Options(maxBatch: 2)));
    }

    static string Greedy(string folder, string question, int maxTokens)
    {
        var (model, gen) = Reference(folder);
        using (model) return GreedyReply(gen, question, maxTokens).Text;
    }

    static string ChatBody(int maxTokens, bool stream) => new JsonObject
    {
        ["model"] = "tiny", ["temperature"] = 0, ["max_tokens"] = maxTokens, ["stream"] = stream,
        ["stream_options"] = new JsonObject { ["include_usage"] = true },
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "What is 2 + 2?" }),
    }.ToJsonString();

    [Fact]
    public async Task ReloadMidStreamKeepsTheRequestAndServesTheNewWeights()
    {
        using var dir = new TempDir();
        string a = TinyFolder(dir, "tiny-a", seed: 7), b = TinyFolder(dir, "tiny-b", seed: 8);
        await using var server = await SlowServer(a, delayMs: 10);

        var stream = Sse(server, "/v1/chat/completions", ChatBody(150, stream: true));
        await WaitHealth(server, h => (long)h["tokens"]! >= 5);
        var (status, reload) = await Post(server, "/update_weights_from_disk", new JsonObject { ["model_path"] = b }.ToJsonString());
        Assert.Equal(200, status);
        Assert.True((bool)reload["success"]!);
        Assert.Equal("1", (string?)reload["weight_version"]);

        // The stream was not dropped: it ran to its budget, its early tokens from version 0 and the rest from version 1.
        var chunks = await stream;
        var versions = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => (string)c["weight_version"]!).ToArray();
        Assert.Equal("0", versions[0]);
        Assert.Equal("1", versions[^1]);
        Assert.Equal(versions.OrderBy(v => v, StringComparer.Ordinal), versions); // never back to the old weights
        Assert.Equal("length", (string?)chunks.Last(c => c["choices"]!.AsArray().Count > 0)["choices"]![0]!["finish_reason"]);
        Assert.Equal(150, (int)chunks[^1]["usage"]!["completion_tokens"]!);

        // New requests get the new weights: the server's greedy text equals model B's own, not model A's.
        var (_, after) = await Post(server, "/v1/chat/completions", ChatBody(12, stream: false));
        Assert.Equal(Greedy(b, "What is 2 + 2?", 12), (string)after["choices"]![0]!["message"]!["content"]!);
        Assert.NotEqual(Greedy(a, "What is 2 + 2?", 12), (string)after["choices"]![0]!["message"]!["content"]!);
        Assert.Equal("1", (string?)after["weight_version"]);
    }

    [Fact]
    public async Task LabelsAndRefusals()
    {
        using var dir = new TempDir();
        string a = TinyFolder(dir, "tiny-a", seed: 7);
        await using var server = await SlowServer(a, delayMs: 0);

        var (status, ok) = await Post(server, "/update_weights_from_disk", new JsonObject { ["model_path"] = a, ["weight_version"] = "step-2" }.ToJsonString());
        Assert.Equal(200, status);
        Assert.Equal("step-2", (string?)ok["weight_version"]);
        Assert.Equal("step-2", (string?)(await Get(server, "/get_weight_version"))["weight_version"]);
        Assert.Equal("step-2", (string?)(await Get(server, "/health"))["weight_version"]);

        // A folder of another shape (here: another vocabulary) cannot replace the served weights.
        var cfg = ModelPresets.Create("qwen2", "tiny", 1000);
        using (var other = CausalLM.Create(cfg)) ModelFolder.Save(other, System.IO.Path.Combine(dir.Path, "other"), Qwen3Tokenizer);
        foreach (var (body, param) in new[]
        {
            (new JsonObject { ["model_path"] = System.IO.Path.Combine(dir.Path, "other") }, "model_path"),
            (new JsonObject { ["model_path"] = System.IO.Path.Combine(dir.Path, "missing") }, "model_path"),
            (new JsonObject { ["path"] = a }, "model_path"),
            (new JsonObject { ["model_path"] = 3 }, "model_path"),
        })
        {
            var (s, err) = await Post(server, "/update_weights_from_disk", body.ToJsonString());
            Assert.Equal(400, s);
            Assert.False((bool)err["success"]!);
            Assert.Equal(param, (string?)err["error"]!["param"]);
        }
        Assert.Equal("step-2", (string?)(await Get(server, "/get_weight_version"))["weight_version"]);
        var (_, still) = await Post(server, "/v1/chat/completions", ChatBody(3, stream: false));
        Assert.Equal("step-2", (string?)still["weight_version"]);
    }
}
