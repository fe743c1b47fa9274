using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Eval;
using R1Sharp.Tests.Cli;
using R1Sharp.Training.Sampling;

namespace R1Sharp.Tests.Training.Sampling;

/// <summary>`r1 sample` against a scripted OpenAI-compatible endpoint: of k completions per prompt, exactly the correct
/// and readable ones become SFT rows; --keep takes the shortest; a second run resumes without a single request.</summary>
public class RejectionSamplingTests
{
    const long Stride = EvalSettings.SeedStride;

    /// <summary>What the stub answers for sample j (the same for every prompt): reasoning, content, finish reason, tokens.</summary>
    static (string? Reasoning, string Content, string Finish, int Tokens) Script(int problem, int j, int a, int b)
    {
        string clean = $"We add the two numbers: {a} plus {b} gives {a + b}, which we check by counting up from {a}.";
        string right = $"The answer is \\boxed{{{a + b}}}.";
        return j switch
        {
            0 => (clean, right, "stop", 40),                                                          // accepted
            1 => (clean, $"The answer is \\boxed{{{a + b + 1}}}.", "stop", 20),                      // incorrect
            2 => ($"We add 这两个数字 together 然后得到结果 {a + b}", right, "stop", 25),                // mixed language
            3 => (string.Concat(Enumerable.Repeat("add one more then ", 12)), right, "stop", 50),   // repetitive
            4 => (clean, right, "length", 35),                                                         // truncated at the limit
            5 => (null, $"<think>\nFirst {a}, then {b} more: {a + b} in total.\n</think>\n\n{right}", "stop", 30), // inline think: accepted
            _ => (null, right, "stop", 10),                                                            // no reasoning: malformed
        };
    }

    static readonly (int A, int B, string Subject)[] Problems = [(2, 3, "Algebra"), (10, 7, "Algebra"), (4, 4, "Geometry")];

    [Fact]
    public void KeepsExactlyTheCorrectAndReadableSamples_AndResumesWithoutAskingAgain()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("prompts.jsonl"), Problems.Select((p, i) => JsonSerializer.Serialize(new
        {
            id = $"p{i}", problem = $"What is {p.A}+{p.B}?", answer = (p.A + p.B).ToString(), subject = p.Subject,
        })));
        int requests = 0;
        using var server = new StubServer(body =>
        {
            Interlocked.Increment(ref requests);
            long seed = (long)body["seed"]!;
            int problem = (int)(seed / Stride), j = (int)(seed % Stride);
            var (a, b, _) = Problems[problem];
            Assert.Equal($"What is {a}+{b}?\n{EvalSettings.DeepSeekInstruction}", (string?)body["messages"]![0]!["content"]);
            var (reasoning, content, finish, tokens) = Script(problem, j, a, b);
            return Reply(content, reasoning, finish, tokens);
        });
        string[] Args(string outDir, params string[] more) =>
            ["sample", "--prompts", dir.File("prompts.jsonl"), "--endpoint", server.Url, "--model-name", "teacher", "--k", "7",
             "--out", outDir, "--concurrency", "3", "--json", .. more];

        var run = CliRunner.Run(Args(dir.File("all")));
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(21, requests);
        var rows = File.ReadAllLines(dir.File("all/sft.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["p0:0", "p0:5", "p1:0", "p1:5", "p2:0", "p2:5"], rows.Select(r => $"{r["problem_id"]}:{r["sample"]}"));
        var (a0, b0, _) = Problems[0];
        var first = rows[0]["messages"]!.AsArray();
        Assert.Equal("user", (string?)first[0]!["role"]);
        Assert.Equal($"What is 2+3?\n{EvalSettings.DeepSeekInstruction}", (string?)first[0]!["content"]);
        Assert.Equal($"<think>\n{Script(0, 0, a0, b0).Reasoning}\n</think>\n\nThe answer is \\boxed{{5}}.", (string?)first[1]!["content"]);
        // reasoning_content absent: the think block in content is kept as the server wrote it.
        Assert.Equal("<think>\nFirst 2, then 3 more: 5 in total.\n</think>\n\nThe answer is \\boxed{5}.", (string?)rows[1]["messages"]![1]!["content"]);
        Assert.Equal(("teacher", 40, "5"), ((string?)rows[0]["source"], (int)rows[0]["completion_tokens"]!, (string?)rows[0]["answer"]));
        Assert.Equal(Stride + 5, (long)rows[3]["seed"]!);

        var summary = JsonNode.Parse(run.Stdout)!;
        Assert.Equal(21, (int)summary["samples"]!);
        Assert.Equal(6, (int)summary["accepted"]!);
        var verdicts = summary["verdicts"]!.AsObject().ToDictionary(kv => kv.Key, kv => (int)kv.Value!);
        Assert.Equal(new Dictionary<string, int>
        {
            ["accepted"] = 6, ["incorrect"] = 3, ["mixed_language"] = 3, ["repetitive"] = 3, ["truncated"] = 3, ["malformed_think"] = 3,
        }, verdicts);
        Assert.Equal(6.0 / 21, (double)summary["acceptance_rate"]!, 6);
        Assert.Equal(4, (int)summary["by_subject"]!["Algebra"]!["accepted"]!);
        Assert.Equal(7, (int)summary["by_subject"]!["Geometry"]!["samples"]!);
        Assert.Equal(6, (int)summary["by_source"]!["teacher"]!["accepted"]!);

        // Same folder again with --keep 1: every sample is in samples.jsonl, so no request; the shorter accepted one stays.
        run = CliRunner.Run(Args(dir.File("all"), "--keep", "1"));
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(21, requests);
        rows = File.ReadAllLines(dir.File("all/sft.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["p0:5", "p1:5", "p2:5"], rows.Select(r => $"{r["problem_id"]}:{r["sample"]}"));

        // The rows are an SFT dataset as they stand.
        Assert.Equal(3, R1Sharp.Training.Sft.SftDataset.Load(dir.File("all/sft.jsonl")).Count);
    }

    [Fact]
    public void TheFilterJudgesInItsDocumentedOrder()
    {
        var f = new ReadabilityFilter { MaxCompletionTokens = 100 };
        SampleRecord R(bool correct = true, string? reasoning = "we add two and three", string answer = "\\boxed{5}", string finish = "stop", int tokens = 20) =>
            new() { Settings = "s", ProblemId = "p", Sample = 0, Gold = "5", Correct = correct, Reasoning = reasoning, Answer = answer, FinishReason = finish, CompletionTokens = tokens };
        Assert.Equal("accepted", f.Judge(R()));
        Assert.Equal("incorrect", f.Judge(R(correct: false, finish: "length")));
        Assert.Equal("truncated", f.Judge(R(finish: "length", reasoning: null)));
        Assert.Equal("malformed_think", f.Judge(R(reasoning: "  ")));
        Assert.Equal("malformed_think", f.Judge(R(answer: "<think>again</think> 5")));
        Assert.Equal("mixed_language", f.Judge(R(reasoning: "we add 二 and 三")));
        Assert.Equal("repetitive", f.Judge(R(reasoning: "so so so so so so so so")));
        Assert.Equal("too_long", f.Judge(R(tokens: 101)));
        Assert.Equal("accepted", f.Judge(R(tokens: 100)));
    }

    internal static (int, string) Reply(string content, string? reasoning, string finish, int tokens) => (200, new JsonObject
    {
        ["id"] = "x", ["object"] = "chat.completion", ["created"] = 0, ["model"] = "teacher",
        ["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0, ["finish_reason"] = finish,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content, ["reasoning_content"] = reasoning },
        }),
        ["usage"] = new JsonObject { ["prompt_tokens"] = 5, ["completion_tokens"] = tokens, ["total_tokens"] = 5 + tokens },
    }.ToJsonString());

    /// <summary>A loopback HTTP server whose replies the test scripts from the request body.</summary>
    internal sealed class StubServer : IDisposable
    {
        readonly HttpListener listener = new();
        public string Url { get; }

        public StubServer(Func<JsonObject, (int Status, string Body)> reply)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            Url = $"http://127.0.0.1:{port}/v1";
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            listener.Start();
            _ = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext ctx;
                    try { ctx = await listener.GetContextAsync(); } catch { return; }
                    _ = Task.Run(async () =>
                    {
                        int status; string text;
                        try
                        {
                            var body = (JsonObject)JsonNode.Parse(await new StreamReader(ctx.Request.InputStream).ReadToEndAsync())!;
                            (status, text) = reply(body);
                        }
                        catch (Exception e) { (status, text) = (400, JsonSerializer.Serialize(new { error = new { message = e.Message } })); }
                        ctx.Response.StatusCode = status;
                        ctx.Response.ContentType = "application/json";
                        var bytes = Encoding.UTF8.GetBytes(text);
                        await ctx.Response.OutputStream.WriteAsync(bytes);
                        ctx.Response.Close();
                    });
                }
            });
        }

        public void Dispose() { listener.Stop(); listener.Close(); }
    }
}
