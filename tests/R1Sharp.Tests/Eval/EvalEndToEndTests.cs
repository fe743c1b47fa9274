using System.Text.Json;
using R1Sharp.Eval;
using R1Sharp.Models;
using R1Sharp.Serving;
using R1Sharp.Tests.Cli;
using R1Sharp.Text;

namespace R1Sharp.Tests.Eval;

/// <summary>`r1 eval` as a user runs it, on a tiny random-weight model: locally through the generation engine and
/// against `r1 serve` on loopback through the OpenAI SDK, each interrupted (results file cut mid-line) and resumed.</summary>
public class EvalEndToEndTests
{
    static string TinyModel(TempDir dir)
    {
        string tokDir = SharedData.Path("tokenizers", "qwen3");
        var tok = HfTokenizer.FromFolder(tokDir);
        var cfg = ModelPresets.Create("qwen2", "tiny", tok.VocabSize, eosTokenIds: [tok.EosTokenId!.Value]);
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(7);
        string path = dir.File("tiny");
        ModelFolder.Save(model, path, tokDir);
        return path;
    }

    [Fact]
    public async Task WithoutMaxTokens_ASampleMayRunToTheEndOfTheContext()
    {
        // A model whose context holds the prompt and a few tokens more: DeepSeek's 32768-token budget would not fit it
        // (nor any model `r1 init` makes, whose context is 32768), so the default is what the context leaves.
        using var dir = new TempDir();
        string tokDir = SharedData.Path("tokenizers", "qwen3");
        var tok = HfTokenizer.FromFolder(tokDir);
        var problem = new BenchProblem("p0", "What is 1+1?", "2");
        var settings = new EvalSettings { Model = "tiny", Temperature = 0 };
        string path = dir.File("tiny");
        using (var probe = new LocalBackend(R1Sharp.Generation.LocalModel.Load(TinyModel(dir)), 1))
        {
            int promptTokens = tok.Encode(probe.Prompt(settings.UserTurn(problem.Problem), true).Prompt).Count;
            var cfg = ModelPresets.Create("qwen2", "tiny", tok.VocabSize, eosTokenIds: [tok.EosTokenId!.Value]) with { MaxPositionEmbeddings = promptTokens + 5 };
            using var model = CausalLM.Create(cfg);
            model.InitializeRandom(7);
            ModelFolder.Save(model, path, tokDir);
        }
        using var backend = new LocalBackend(R1Sharp.Generation.LocalModel.Load(path), 1);
        using var log = new ResultsLog(dir.File("samples.jsonl"));
        var records = await EvalRunner.RunAsync([problem], 1, settings, backend, log);
        var r = Assert.Single(records);
        Assert.InRange(r.CompletionTokens, 1, 5);
    }

    static string[] Lines(string outDir) => File.ReadAllLines(Path.Combine(outDir, EvalReport.ResultsFile));

    static (string Id, int Sample, long Seed) KeyOf(string line)
    {
        using var d = JsonDocument.Parse(line);
        var r = d.RootElement;
        return (r.GetProperty("problem_id").GetString()!, r.GetProperty("sample").GetInt32(), r.GetProperty("seed").GetInt64());
    }

    /// <summary>Keeps the first <paramref name="keep"/> lines and half of the next, as a kill during a write leaves it.</summary>
    static void Interrupt(string outDir, int keep)
    {
        string path = Path.Combine(outDir, EvalReport.ResultsFile);
        var lines = File.ReadAllLines(path);
        File.WriteAllText(path, string.Concat(lines.Take(keep).Select(l => l + "\n")) + lines[keep][..(lines[keep].Length / 2)]);
    }

    static JsonElement Summary(CliRunner.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    [Fact]
    public void LocalModelEvalWritesEveryOutputAndResumesOnlyTheMissingSamples()
    {
        using var dir = new TempDir();
        string model = TinyModel(dir), outDir = dir.File("out");
        string[] args = ["eval", "--bench", "math500", "--bench-dir", SharedData.Path("benchmarks"), "--model", model,
            "--limit", "3", "--k", "2", "--max-tokens", "8", "--out", outDir, "--json"];

        var first = Summary(CliRunner.Run(args));
        Assert.Equal((3, 2, 6), (first.GetProperty("problems").GetInt32(), first.GetProperty("k").GetInt32(), first.GetProperty("samples").GetInt32()));
        Assert.Equal(8.0, first.GetProperty("mean_completion_tokens").GetDouble());
        Assert.Equal(3, first.GetProperty("by_subject").EnumerateObject().Count());
        Assert.Equal(2, first.GetProperty("pass_at_k").EnumerateObject().Count());
        var original = Lines(outDir);
        Assert.Equal(6, original.Length);
        Assert.Equal(6, original.Select(KeyOf).Distinct().Count());
        Assert.Equal(3, File.ReadAllLines(Path.Combine(outDir, EvalReport.ProblemsFile)).Length);
        Assert.Contains("| pass@1 (mean of 2 samples) |", File.ReadAllText(Path.Combine(outDir, EvalReport.ReportFile)));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(outDir, EvalReport.PlotFile)).Take(4));

        // Killed while writing line 4: lines 1–3 stay as they were, and only samples 4–6 are generated again.
        Interrupt(outDir, keep: 3);
        var rerun = CliRunner.Run(args);
        var again = Summary(rerun);
        Assert.Contains("3 resumed", rerun.Stderr);
        var resumed = Lines(outDir);
        Assert.Equal(6, resumed.Length);
        Assert.Equal(original.Take(3), resumed.Take(3));
        Assert.Equal(original.Skip(3).Select(KeyOf), resumed.Skip(3).Select(KeyOf)); // same samples, same seeds
        // The last problem's two samples ran as the same batch as before with the same seeds: the same text.
        Assert.Equal(original.Skip(4), resumed.Skip(4));
        Assert.Equal(6, again.GetProperty("samples").GetInt32());
    }

    [Fact]
    public async Task EndpointEvalAgainstR1ServeResumesAndRaisingKPaysOnlyForNewSamples()
    {
        using var dir = new TempDir();
        string model = TinyModel(dir), outDir = dir.File("out");
        string keyVar = "R1SHARP_EVAL_TEST_KEY_" + Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable(keyVar, "sekret"); // inherited by the r1 child process
        await using var server = OpenAiServer.FromFolder(model, new ServeOptions { Port = 0, MaxBatch = 4, MaxContext = 512, ApiKey = "sekret" });
        var uri = await server.StartAsync();
        string[] Args(int k) => ["eval", "--bench", "aime24", "--bench-dir", SharedData.Path("benchmarks"), "--endpoint", new Uri(uri, "v1").ToString(),
            "--model-name", server.Model.Name, "--api-key-env", keyVar, "--limit", "2", "--k", k.ToString(), "--max-tokens", "8", "--out", outDir, "--json"];

        var first = Summary(CliRunner.Run(Args(2)));
        Assert.Equal((2, 2, 4), (first.GetProperty("problems").GetInt32(), first.GetProperty("k").GetInt32(), first.GetProperty("samples").GetInt32()));
        var original = Lines(outDir);
        Assert.Equal(4, original.Length);
        Assert.All(original, l => Assert.Equal(8, JsonDocument.Parse(l).RootElement.GetProperty("completion_tokens").GetInt32()));

        Interrupt(outDir, keep: 1);
        var rerun = CliRunner.Run(Args(2));
        Summary(rerun);
        Assert.Contains("1 resumed", rerun.Stderr);
        var resumed = Lines(outDir);
        Assert.Equal(original[0], resumed[0]);
        Assert.Equal(original.Skip(1).Select(KeyOf).OrderBy(x => x), resumed.Skip(1).Select(KeyOf).OrderBy(x => x));

        // Asking for a third sample per problem keeps the four there and adds two.
        var more = CliRunner.Run(Args(3));
        var third = Summary(more);
        Assert.Contains("4 resumed", more.Stderr);
        Assert.Equal(6, Lines(outDir).Length);
        Assert.Equal(3, third.GetProperty("k").GetInt32());

        // A wrong key is one clear line naming the endpoint and the status, and nothing is written.
        Environment.SetEnvironmentVariable(keyVar, "wrong");
        var denied = CliRunner.Run(Args(4));
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("HTTP 401", denied.Stderr);
        Assert.Equal(6, Lines(outDir).Length);
    }

    [Theory]
    [InlineData("give exactly one of --model DIR (local) or --endpoint URL (with --model-name)", "--bench", "gsm8k")]
    [InlineData("--endpoint needs --model-name (the model id the server serves)", "--bench", "gsm8k", "--endpoint", "http://127.0.0.1:1/v1")]
    [InlineData("nowhere.jsonl: benchmark file not found", "--bench", "nowhere.jsonl", "--endpoint", "http://127.0.0.1:1/v1", "--model-name", "m")]
    public void UsageErrorsAreOneLine(string message, params string[] args)
    {
        var r = CliRunner.Run(["eval", .. args]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {message}", r.Stderr.Trim());
    }
}
