using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Serving;
using static R1Sharp.Tests.Serving.ServingTestKit;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Serving;

/// <summary>`r1 serve --lora NAME=DIR …`: several adapters over one base, chosen per request by the model field and
/// decoded in the same batch; each answers as its merged model does (the independent reference: W + (α/r)·B·A
/// written into a plain model and run by the in-process engine).</summary>
public class LoraServingTests
{
    static string Adapter(string folder, string dir, int seed)
    {
        using var m = ModelFolder.Load(folder);
        var lora = LoraModel.Of(m);
        lora.AddFresh(new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = [LoraConfig.AllLinear] }, seed);
        using (no_grad())
        {
            var gen = new Generator((ulong)seed);
            foreach (var (name, p) in lora.NamedParameters())
                if (name.EndsWith("lora_B.weight")) p.copy_(normal(0, 0.5, p.shape, generator: gen));
        }
        lora.Save(dir);
        return dir;
    }

    static int[] MergedGreedy(string folder, string? adapter, int[] prompt, int maxTokens)
    {
        using var m = ModelFolder.Load(folder);
        if (adapter != null)
        {
            var lora = LoraModel.Of(m);
            lora.Load(adapter);
            lora.MergeAndUnload();
        }
        var eos = new[] { m.Config.EosTokenIds[0] };
        return new GenerationEngine(m).Generate([prompt], new SamplingOptions { Temperature = 0, MaxTokens = maxTokens }, eos)[0].TokenIds;
    }

    [Fact]
    public async Task EachRequestDecodesWithTheAdapterItsModelFieldNames()
    {
        using var dir = new TempDir();
        string folder = TinyFolder(dir, "tiny-base", seed: 7);
        string a1 = Adapter(folder, dir.File("a1"), 1), a2 = Adapter(folder, dir.File("a2"), 2);
        var options = Options(maxBatch: 4, context: 128) with { Loras = [("math", a1), ("code", a2)] };
        await using var server = await Start(OpenAiServer.FromFolder(folder, options));

        var models = await Get(server, "/v1/models");
        Assert.Equal(new[] { "tiny-base", "math", "code" }, models["data"]!.AsArray().Select(x => (string)x!["id"]!));
        Assert.Equal("tiny-base", (string?)models["data"]![1]!["parent"]);

        int[] prompt = [100, 200, 300, 400, 500];
        const int max = 8;
        var names = new[] { "tiny-base", "math", "code", "math" };
        // All four at once: they share decode steps, each row through its own adapter.
        var replies = await Task.WhenAll(names.Select(n => Post(server, "/v1/completions",
            new JsonObject { ["model"] = n, ["prompt"] = new JsonArray(prompt.Select(i => (JsonNode)i).ToArray()), ["max_tokens"] = max, ["temperature"] = 0, ["return_token_ids"] = true }.ToJsonString())));
        int[] Tokens(JsonObject body) => body["choices"]![0]!["token_ids"]!.AsArray().Select(x => (int)x!).ToArray();
        Assert.All(replies, r => Assert.Equal(200, r.Status));
        var expected = new Dictionary<string, int[]>
        {
            ["tiny-base"] = MergedGreedy(folder, null, prompt, max), ["math"] = MergedGreedy(folder, a1, prompt, max), ["code"] = MergedGreedy(folder, a2, prompt, max),
        };
        Assert.False(expected["math"].SequenceEqual(expected["tiny-base"]) && expected["code"].SequenceEqual(expected["tiny-base"]), "the adapters change nothing: the test proves little");
        for (int i = 0; i < names.Length; i++) Assert.Equal(expected[names[i]], Tokens(replies[i].Body));

        var (status, error) = await Post(server, "/v1/completions", """{"model": "poetry", "prompt": "hi", "max_tokens": 2}""");
        Assert.Equal(400, status);
        Assert.Contains("'math'", error["error"]!["message"]!.GetValue<string>());
        var (swap, swapError) = await Post(server, "/update_weights_from_disk", new JsonObject { ["model_path"] = folder }.ToJsonString());
        Assert.Equal(400, swap);
        Assert.Contains("LoRA adapters", swapError["error"]!["message"]!.GetValue<string>());
    }
}
