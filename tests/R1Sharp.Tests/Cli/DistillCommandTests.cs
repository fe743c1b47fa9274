using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Eval;
using R1Sharp.Tests.Training.Sampling;
using static R1Sharp.Tests.Cli.PipelineKillResumeTests;

namespace R1Sharp.Tests.Cli;

/// <summary>`r1 distill` off-policy as one resumable job: a scripted teacher endpoint's verified samples become the
/// student's SFT data and the student is fine-tuned on exactly them; run again on the same folder, it asks the teacher
/// for nothing and trains no further. On-policy against a local teacher: the student trains and its metrics say so.</summary>
public class DistillCommandTests
{
    [Fact]
    public void OffPolicy_SamplesThenFineTunes_AndARerunPaysForNothing()
    {
        using var dir = new TempDir();
        Write(dir);
        int requests = 0;
        using var server = new RejectionSamplingTests.StubServer(body =>
        {
            Interlocked.Increment(ref requests);
            long seed = (long)body["seed"]!;
            string problem = (string)body["messages"]![0]!["content"]!;
            var parts = problem.Split('+').Select(int.Parse).ToArray();
            // Sample 0 of each prompt is right, sample 1 wrong: exactly the first is kept.
            int answer = parts[0] + parts[1] + (int)(seed % EvalSettings.SeedStride);
            return RejectionSamplingTests.Reply($"The answer is <answer>{answer}</answer>", $"adding {parts[0]} and {parts[1]}", "stop", 12);
        });
        File.WriteAllText(dir.File("sft.yaml"), "max_steps: 3\nper_device_train_batch_size: 4\nlearning_rate: 0.01\nmax_length: 64\nsave_steps: 1\nnum_threads: 1\n");
        string[] args = ["distill", "--endpoint", server.Url, "--model-name", "teacher", "--student", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"),
            "--k", "2", "--instruction", "", "--config", dir.File("sft.yaml"), "--out", dir.File("job"), "--json"];
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(48, requests);
        var json = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(24, (int)json["sample"]!["kept"]!);
        Assert.Equal(3, (int)json["steps"]!);
        var rows = File.ReadAllLines(dir.File("job/sample/sft.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.All(rows, row => Assert.Equal(0, (int)row["sample"]!));
        Assert.Equal("<think>\nadding 0 and 0\n</think>\n\nThe answer is <answer>0</answer>", (string?)rows[0]["messages"]![1]!["content"]);
        string weights = dir.File("job/sft/model/model.safetensors");
        Assert.True(File.Exists(weights));
        Assert.False(File.ReadAllBytes(weights).SequenceEqual(File.ReadAllBytes(dir.File("tiny/model.safetensors"))), "the student did not change");
        var before = File.ReadAllBytes(weights);

        var again = CliRunner.Run(args);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Equal(48, requests);
        Assert.Equal(3, (int)JsonNode.Parse(again.Stdout)!["steps"]!);
        Assert.True(before.SequenceEqual(File.ReadAllBytes(weights)), "a rerun changed the finished student");
    }

    [Fact]
    public void OnPolicy_TrainsTheStudentAgainstALocalTeacher()
    {
        using var dir = new TempDir();
        Write(dir);
        File.WriteAllText(dir.File("gkd.yaml"), "max_steps: 3\nmax_new_tokens: 6\nper_device_train_batch_size: 4\nlearning_rate: 0.01\nprompt_template: r1_zero\nsave_steps: 1\nnum_threads: 1\n");
        var r = CliRunner.Run("distill", "--mode", "on-policy", "--teacher", dir.File("tiny"), "--student", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"),
            "--config", dir.File("gkd.yaml"), "--out", dir.File("job"), "--limit", "8", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JsonNode.Parse(r.Stdout)!;
        Assert.Equal("on-policy", (string?)json["mode"]);
        Assert.Equal(3, (int)json["steps"]!);
        // The teacher is the student's own starting point: the first step's divergence is (to rounding) zero.
        var metrics = File.ReadAllLines(dir.File("job/metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, metrics.Count);
        Assert.True(Math.Abs(metrics[0].GetProperty("loss").GetDouble()) < 1e-5);
        Assert.Equal(8, File.ReadAllLines(dir.File("job/prompts.jsonl")).Length);
        Assert.True(File.Exists(dir.File("job/model/model.safetensors")));
    }
}
