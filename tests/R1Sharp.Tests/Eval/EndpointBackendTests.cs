using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Eval;

namespace R1Sharp.Tests.Eval;

/// <summary>The endpoint backend against a scripted HTTP server: transient failures are retried, reasoning_content is
/// kept apart from the graded answer, concurrency is bounded, and a hard error is one line naming the endpoint.</summary>
public class EndpointBackendTests
{
    /// <summary>A loopback server whose reply to the n-th chat request (from 1) the test decides.</summary>
    sealed class Scripted : IDisposable
    {
        readonly HttpListener listener = new();
        readonly Func<int, JsonObject, (int Status, string Body)> reply;
        int requests, inFlight;
        public int Requests => requests;
        public int MaxInFlight;
        public readonly List<JsonObject> Bodies = [];
        public string Url { get; }

        public Scripted(Func<int, JsonObject, (int, string)> reply, int delayMs = 0)
        {
            this.reply = reply;
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
                        int n = Interlocked.Increment(ref requests);
                        int now = Interlocked.Increment(ref inFlight);
                        lock (Bodies) MaxInFlight = Math.Max(MaxInFlight, now);
                        var body = (JsonObject)JsonNode.Parse(await new StreamReader(ctx.Request.InputStream).ReadToEndAsync())!;
                        lock (Bodies) Bodies.Add(body);
                        await Task.Delay(delayMs);
                        var (status, text) = this.reply(n, body);
                        Interlocked.Decrement(ref inFlight);
                        ctx.Response.StatusCode = status;
                        ctx.Response.ContentType = "application/json";
                        if (status == 429) ctx.Response.AddHeader("retry-after-ms", "10");
                        var bytes = Encoding.UTF8.GetBytes(text);
                        await ctx.Response.OutputStream.WriteAsync(bytes);
                        ctx.Response.Close();
                    });
                }
            });
        }

        public void Dispose() { listener.Stop(); listener.Close(); }
    }

    static string Completion(string content, string? reasoning) => new JsonObject
    {
        ["id"] = "x", ["object"] = "chat.completion", ["created"] = 0, ["model"] = "m",
        ["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0, ["finish_reason"] = "stop",
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content, ["reasoning_content"] = reasoning },
        }),
        ["usage"] = new JsonObject { ["prompt_tokens"] = 5, ["completion_tokens"] = 12, ["total_tokens"] = 17 },
    }.ToJsonString();

    static readonly string Error = """{"error":{"message":"busy","type":"server_error"}}""";

    static List<SampleRecord> Run(Scripted server, TempDir dir, int problems, int k, int concurrency)
    {
        var ps = Enumerable.Range(0, problems).Select(i => new BenchProblem($"p{i}", $"What is {i}+1?", (i + 1).ToString())).ToList();
        using var backend = new EndpointBackend(server.Url, "m", "key", concurrency);
        var settings = new EvalSettings { Model = backend.ModelName, MaxTokens = 64 };
        using var log = new ResultsLog(dir.File("samples.jsonl"));
        return EvalRunner.RunAsync(ps, k, settings, backend, log).GetAwaiter().GetResult().ToList();
    }

    [Fact]
    public void TransientFailuresAreRetriedAndReasoningIsKeptApartFromTheGradedAnswer()
    {
        using var dir = new TempDir();
        // Requests 1 and 2 fail (429, then 503); the SDK's policy retries them with backoff.
        using var server = new Scripted((n, body) => n switch
        {
            1 => (429, Error),
            2 => (503, Error),
            // The reasoning mentions a wrong value; only the answer is graded.
            _ => (200, Completion("So the answer is \\boxed{" + (int.Parse(((string)body["messages"]![0]!["content"]!)[8..9]) + 1) + "}.", "Maybe \\boxed{99}? No.")),
        });
        var records = Run(server, dir, problems: 2, k: 2, concurrency: 1);
        {
            Assert.Equal(6, server.Requests);
            Assert.Equal(4, records.Count);
            Assert.All(records, r => Assert.True(r.Correct, r.Reason));
            Assert.All(records, r => Assert.Equal("Maybe \\boxed{99}? No.", r.Reasoning));
            Assert.All(records, r => Assert.Equal(12, r.CompletionTokens));
            // DeepSeek's prompt, its sampling and one seed per sample.
            var first = server.Bodies.Last();
            Assert.EndsWith("\nPlease reason step by step, and put your final answer within \\boxed{}.", (string)first["messages"]![0]!["content"]!);
            Assert.Equal(0.6, (double)first["temperature"]!, 5);
            Assert.Equal(0.95, (double)first["top_p"]!, 5);
            Assert.Equal(64, (int)(first["max_completion_tokens"] ?? first["max_tokens"])!);
            Assert.Equal(4, server.Bodies.Where(b => b["seed"] != null).Select(b => (long)b["seed"]!).Distinct().Count());
        }
    }

    [Fact]
    public void ConcurrencyIsBounded()
    {
        using var dir = new TempDir();
        using var server = new Scripted((_, _) => (200, Completion("\\boxed{1}", null)), delayMs: 50);
        var records = Run(server, dir, problems: 4, k: 4, concurrency: 3);
        Assert.Equal(16, records.Count);
        Assert.InRange(server.MaxInFlight, 2, 3);
    }

    [Fact]
    public void AHardErrorStopsTheRunWithOneLineAndKeepsWhatFinished()
    {
        using var dir = new TempDir();
        using var server = new Scripted((n, _) => n <= 2 ? (200, Completion("\\boxed{1}", null))
            : (400, """{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}"""));
        var e = Assert.Throws<R1SharpException>(() => Run(server, dir, problems: 3, k: 2, concurrency: 1));
        Assert.StartsWith($"endpoint {server.Url}: HTTP 400", e.Message);
        using var log = new ResultsLog(dir.File("samples.jsonl"));
        Assert.Equal(2, log.Records.Count);
    }
}
