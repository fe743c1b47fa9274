using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Serving;
using R1Sharp.Tasks;
using R1Sharp.Tests.Serving;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

/// <summary>GRPO whose rollouts come from an inference server over HTTP, with the weights handed over after each update.</summary>
public class RemoteRolloutTests
{
    static GrpoConfig Easy(string outputDir)
    {
        var cfg = TinyGrpo.Config(outputDir);
        cfg.MaxSteps = 30; cfg.LearningRate = 2e-2; cfg.LossType = "dr_grpo"; cfg.ScaleRewards = "none"; cfg.Beta = 0.0;
        return cfg;
    }

    static string BaseFolder(TempDir dir)
    {
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        string path = Path.Combine(dir.Path, "base");
        ModelFolder.Save(model, path, TinyGrpo.TokenizerFolder);
        return path;
    }

    [Fact]
    public async Task RolloutsFromAServeProcess_RaiseTheReward_AndCarryTheWeightVersionOfTheirStep()
    {
        using var dir = new TempDir();
        string baseFolder = BaseFolder(dir);
        using var server = await ServeProcess.StartAsync(baseFolder, ["--max-batch", "16", "--max-context", "128"]);
        var tok = TinyGrpo.Tokenizer();

        // The same run twice: rollouts in this process, and rollouts from the server.
        List<double> Run(string name, IRolloutSource? source)
        {
            using var model = ModelFolder.Load(baseFolder);
            using var trainer = new GrpoTrainer(Easy(Path.Combine(dir.Path, name)), model, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format,
                TinyGrpo.TokenizerFolder, source);
            var rewards = new List<double>();
            while (!trainer.Done) rewards.Add(trainer.Step()["reward"]);
            return rewards;
        }
        var local = Run("local", null);
        using var remote = new EndpointRolloutSource([server.BaseAddress.ToString()], Path.Combine(dir.Path, "shared-weights"), tok, TinyGrpo.TokenizerFolder);
        var served = Run("remote", remote);

        double first = served.Take(5).Average(), last = served.TakeLast(5).Average();
        Assert.True(last > first + 0.2, $"with server rollouts the reward went from {first:F3} to {last:F3}");
        double localLast = local.TakeLast(5).Average();
        Assert.True(Math.Abs(last - localLast) < 0.25, $"server rollouts end at reward {last:F3}, in-process ones at {localLast:F3}");

        // Every completion learned from at step k came from the weights published after step k−1, from the server.
        var rows = RolloutLog.Read(Path.Combine(dir.Path, "remote", "rollouts.jsonl"));
        Assert.Equal(30 * 16, rows.Count);
        Assert.All(rows, r => Assert.Equal($"step-{(int)r["step"]! - 1}", (string)r["weight_version"]!));
        Assert.All(rows, r => Assert.Equal(server.BaseAddress.ToString().TrimEnd('/'), (string)r["source"]!));
        Assert.All(RolloutLog.Read(Path.Combine(dir.Path, "local", "rollouts.jsonl")), r => Assert.Equal("local", (string)r["source"]!));

        // The server now serves the final weights, and the shared folder keeps only the newest two versions.
        using var http = new HttpClient();
        var health = JsonNode.Parse(await http.GetStringAsync(new Uri(server.BaseAddress, "health")))!;
        Assert.Equal("step-30", (string)health["weight_version"]!);
        Assert.Equal(["step-29", "step-30"], Directory.GetDirectories(Path.Combine(dir.Path, "shared-weights")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task TheFirstStepSamplesWhatTheTrainerWouldHaveSampled()
    {
        // r1 serve seeds choice i of a request with seed + i, as the batched engine seeds row i: the same weights and
        // seed give the same completions wherever they are generated.
        using var dir = new TempDir();
        string baseFolder = BaseFolder(dir);
        await using var server = await ServingTestKit.Start(OpenAiServer.FromFolder(baseFolder, ServingTestKit.Options(maxBatch: 8, maxQueue: 64, context: 128)));
        var tok = TinyGrpo.Tokenizer();
        using var model = ModelFolder.Load(baseFolder);
        var prompts = TinyGrpo.Data(4).Select(p => tok.Encode(R1ZeroTemplate.Format(p.Prompt)).ToArray()).ToList();
        var options = new SamplingOptions { Temperature = 1f, MaxTokens = 6, Seed = 1234 };
        int[] eos = [tok.EosTokenId!.Value];
        using var local = new LocalRolloutSource(model);
        using var remote = new EndpointRolloutSource([server.BaseAddress!.ToString()], Path.Combine(dir.Path, "w"), tok);
        local.PublishWeights(model, 0);
        remote.PublishWeights(model, 0);
        var a = local.Generate(prompts, 4, options, eos);
        var b = remote.Generate(prompts, 4, options, eos);
        Assert.Equal(16, b.Count);
        int same = a.Zip(b).Count(x => x.First.TokenIds.SequenceEqual(x.Second.TokenIds));
        Assert.True(same >= 15, $"{same} of 16 completions equal");
        Assert.Contains(b, s => s.TokenIds.Length > 0);
    }

    [Fact]
    public async Task AServerServingOtherWeights_IsAnError_NotSilentOffPolicyData()
    {
        using var dir = new TempDir();
        string baseFolder = BaseFolder(dir);
        await using var server = await ServingTestKit.Start(OpenAiServer.FromFolder(baseFolder, ServingTestKit.Options(maxBatch: 4, context: 128)));
        var tok = TinyGrpo.Tokenizer();
        using var model = ModelFolder.Load(baseFolder);
        using var remote = new EndpointRolloutSource([server.BaseAddress!.ToString()], Path.Combine(dir.Path, "w"), tok);
        remote.PublishWeights(model, 3);
        // Someone else reloads the server behind the trainer's back.
        var (status, _) = await ServingTestKit.Post(server, "/update_weights_from_disk",
            new JsonObject { ["model_path"] = baseFolder, ["weight_version"] = "someone-else" }.ToJsonString());
        Assert.Equal(200, status);
        var e = Assert.Throws<R1SharpException>(() => remote.Generate([tok.Encode("1+1").ToArray()], 2, new SamplingOptions { MaxTokens = 3, Seed = 1 }, [tok.EosTokenId!.Value]));
        Assert.Contains("weight version \"someone-else\" but the trainer published \"step-3\"", e.Message);
    }

    [Theory]
    [InlineData("localhost:8000", "expected an http(s) URL")]
    [InlineData("ftp://host/v1", "expected an http(s) URL")]
    public void BadEndpointUrls_AreNamed(string url, string expected)
    {
        var e = Assert.Throws<R1SharpException>(() => new EndpointRolloutSource([url], "/tmp/unused", TinyGrpo.Tokenizer()));
        Assert.Contains(url, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AnUnreachableServer_FailsWithItsAddress()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        // A port that was free a moment ago: nothing listens there.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var remote = new EndpointRolloutSource([$"http://127.0.0.1:{port}/v1"], Path.Combine(dir.Path, "w"), tok, policy: new R1Sharp.Eval.EndpointPolicy { MaxRetries = 0 });
        var e = Assert.Throws<R1SharpException>(() => remote.PublishWeights(model, 0));
        Assert.Contains($"rollout server http://127.0.0.1:{port}: POST /update_weights_from_disk failed", e.Message);
    }
}
