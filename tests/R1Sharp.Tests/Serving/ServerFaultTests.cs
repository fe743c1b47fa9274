using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Serving;
using static R1Sharp.Tests.Serving.ServingTestKit;

namespace R1Sharp.Tests.Serving;

/// <summary>`r1 serve` under hostile requests: oversized bodies get 413, lone surrogates 400, a request past its deadline
/// is cancelled and its slot freed, and the server keeps answering everyone else meanwhile.</summary>
public class ServerFaultTests
{
    static async Task<OpenAiServer> Scripted(ServeOptions options, int tokens = 200, int delayMs = 0)
    {
        var served = Served("scripted");
        int[] script = served.Tokenizer.Encode(string.Concat(Enumerable.Repeat("la ", tokens))).ToArray();
        var backend = new ScriptedBackend(options.MaxBatch, options.MaxContext!.Value, served.Tokenizer.VocabSize, script, served.Tokenizer.EosTokenId!.Value, delayMs);
        return await Start(new OpenAiServer(served, backend, options));
    }

    static string ChatBody(string content, int maxTokens = 4, bool stream = false) => new JsonObject
    {
        ["model"] = "scripted", ["max_tokens"] = maxTokens, ["stream"] = stream,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
    }.ToJsonString();

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"scripted","messages":[{"role":"user","content":"a\ud800b"}]}""", "messages[0].content")]
    [InlineData("/v1/chat/completions", """{"model":"scr\udfffipted","messages":[{"role":"user","content":"x"}]}""", "model")]
    [InlineData("/v1/chat/completions", """{"model":"scripted","stop":["ok","\ud800"],"messages":[{"role":"user","content":"x"}]}""", "stop[1]")]
    [InlineData("/v1/completions", """{"model":"scripted","prompt":"2+2=\ud83d"}""", "prompt")]
    [InlineData("/v1/completions", """{"model":"scripted","prompt":"x","\ud800":1}""", "$")]
    public async Task ALoneSurrogateIs400NamingTheField(string path, string body, string param)
    {
        await using var server = await Scripted(Options(context: 64));
        var (status, json) = await Post(server, path, body);
        Assert.Equal(400, status);
        Assert.Equal("invalid_unicode", (string?)json["error"]!["code"]);
        Assert.Equal(param, (string?)json["error"]!["param"]);
    }

    [Theory]
    [InlineData("Bearer s3cret", 200)]
    [InlineData("bearer s3cret", 200)]
    [InlineData("BEARER   s3cret", 200)]
    [InlineData("Bearer S3CRET", 401)]
    [InlineData("Basic s3cret", 401)]
    [InlineData("Bearer", 401)]
    public async Task TheBearerSchemeIsCaseInsensitive_TheKeyIsNot(string authorization, int expected)
    {
        await using var server = await Scripted(Options(apiKey: "s3cret", context: 64));
        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress!, "/v1/chat/completions")) { Content = new StringContent(ChatBody("x"), Encoding.UTF8, "application/json") };
        req.Headers.TryAddWithoutValidation("Authorization", authorization);
        using var rsp = await Http.SendAsync(req);
        Assert.Equal(expected, (int)rsp.StatusCode);
    }

    [Fact]
    public async Task AnOversizedBodyIs413_WithOrWithoutContentLength()
    {
        await using var server = await Scripted(Options(context: 64) with { MaxRequestBytes = 64 << 10 });
        string big = ChatBody(new string('a', 200 << 10));
        var (status, json) = await Post(server, "/v1/chat/completions", big);
        Assert.Equal(413, status);
        Assert.Equal("request_too_large", (string?)json["error"]!["code"]);
        Assert.Contains("65,536 bytes", (string?)json["error"]!["message"]);
        // Chunked: the limit is found while reading.
        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress!, "/v1/chat/completions"))
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big))),
        };
        req.Headers.TransferEncodingChunked = true;
        req.Headers.ExpectContinue = true;
        using var rsp = await Http.SendAsync(req);
        Assert.Equal(413, (int)rsp.StatusCode);
        // A request within the limit still works.
        Assert.Equal(200, (await Post(server, "/v1/chat/completions", ChatBody("hello"))).Status);
    }

    [Fact]
    public async Task ARequestPastItsDeadlineIsCancelled_AndItsSlotFreed()
    {
        // 20 ms a token and 150 tokens wanted: 3 s of work against a 0.5 s deadline.
        await using var server = await Scripted(Options(maxBatch: 1, context: 256) with { RequestTimeout = TimeSpan.FromMilliseconds(500) }, delayMs: 20);
        var (status, json) = await Post(server, "/v1/chat/completions", ChatBody("long", maxTokens: 150));
        Assert.Equal(504, status);
        Assert.Equal("request_timeout", (string?)json["error"]!["code"]);
        var h = await WaitHealth(server, h => (int)h["running"]! == 0 && (int)h["waiting"]! == 0, seconds: 5);
        Assert.True((long)h["tokens"]! < 150, $"the sequence ran to its end: {h.ToJsonString()}");
        // A stream past its deadline ends with an error event and [DONE]; the one slot then serves the next request.
        var chunks = await Sse(server, "/v1/chat/completions", ChatBody("long", maxTokens: 150, stream: true));
        Assert.Equal("request_timeout", (string?)chunks[^1]["error"]!["code"]);
        await WaitHealth(server, h => (int)h["running"]! == 0, seconds: 5);
        Assert.Equal(200, (await Post(server, "/v1/chat/completions", ChatBody("short", maxTokens: 3))).Status);
    }

    [Fact]
    public async Task FortyStreamsAllGetDone_WhileOversizedRequestsAreRefused()
    {
        await using var server = await Scripted(Options(maxBatch: 8, maxQueue: 64, context: 128) with { MaxRequestBytes = 64 << 10 }, delayMs: 2);
        var streams = Enumerable.Range(0, 40).Select(i => Sse(server, "/v1/chat/completions", ChatBody($"question {i}", maxTokens: 20, stream: true))).ToArray();
        string big = ChatBody(new string('x', 1 << 20));
        var refused = Enumerable.Range(0, 3).Select(_ => Post(server, "/v1/chat/completions", big)).ToArray();
        foreach (var r in await Task.WhenAll(refused)) Assert.Equal(413, r.Status);
        foreach (var chunks in await Task.WhenAll(streams)) // Sse asserts the [DONE] at the end
            Assert.Equal("length", (string?)chunks.Last(c => c["choices"] is JsonArray { Count: > 0 })["choices"]![0]!["finish_reason"]);
    }

    [Fact]
    public async Task HealthAndANormalRequestAnswerWhileAHostileOneIsInFlight()
    {
        await using var server = await Scripted(Options(maxBatch: 2, context: 64));
        // A client that announces 1 MB and trickles it in, a kilobyte at a time, for as long as the test runs.
        using var hostile = new TcpClient();
        await hostile.ConnectAsync(IPAddress.Loopback, server.BaseAddress!.Port);
        var stream = hostile.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {1 << 20}\r\n\r\n"));
        using var stopTrickle = new CancellationTokenSource();
        var trickle = Task.Run(async () =>
        {
            var kb = Encoding.ASCII.GetBytes(new string(' ', 1024));
            try { while (!stopTrickle.IsCancellationRequested) { await stream.WriteAsync(kb, stopTrickle.Token); await Task.Delay(100, stopTrickle.Token); } }
            catch (Exception e) when (e is OperationCanceledException or IOException) { }
        });
        // And one whose message is a 1 MB run of letters (one pre-token for the tokenizer, within the body limit).
        var longRun = Post(server, "/v1/chat/completions", ChatBody(string.Concat(Enumerable.Repeat("abcdefghij", 100_000))));

        Assert.Equal("ok", (string?)(await Get(server, "/health"))["status"]);
        var (status, _) = await Post(server, "/v1/chat/completions", ChatBody("hello", maxTokens: 3));
        Assert.Equal(200, status);
        Assert.Equal(0, hostile.Available); // the trickling request is still being read: no answer yet
        Assert.False(trickle.IsCompleted);
        stopTrickle.Cancel();
        await trickle;

        var (runStatus, runJson) = await longRun; // tokenized in about a second, then refused: it does not fit 64 tokens
        Assert.Equal(400, runStatus);
        Assert.Equal("context_length_exceeded", (string?)runJson["error"]!["code"]);
    }
}
