#pragma warning disable SCME0001 // JsonPatch: the SDK's way to read fields OpenAI does not define (reasoning_content)
using System.ClientModel;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using R1Sharp.Serving;
using R1Sharp.Text;
using static R1Sharp.Tests.Serving.ServingTestKit;

namespace R1Sharp.Tests.Serving;

/// <summary>The server around a scripted token source: reasoning split, queue limits, disconnects, authentication.</summary>
public class ReasoningAndLimitsTests
{
    const string Reply = "<think>\nI add 2 and 2.\n</think>\n\nThe answer is 4.";

    static async Task<OpenAiServer> Scripted(string reply, ServeOptions options, int delayMs = 0, ChatTemplate? template = null)
    {
        var served = Served("scripted", template);
        int[] script = served.Tokenizer.Encode(reply).ToArray();
        var backend = new ScriptedBackend(options.MaxBatch, options.MaxContext!.Value, served.Tokenizer.VocabSize, script, served.Tokenizer.EosTokenId!.Value, delayMs);
        return await Start(new OpenAiServer(served, backend, options));
    }

    [Fact]
    public async Task ReasoningComesBackAsReasoningContent()
    {
        await using var server = await Scripted(Reply, Options());
        var result = await Chat(server).CompleteChatAsync([new UserChatMessage("2+2?")]);
        var c = result.Value;
        Assert.Equal("The answer is 4.", c.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
        var raw = JsonNode.Parse(result.GetRawResponse().Content.ToString())!;
        Assert.Equal("I add 2 and 2.", (string?)raw["choices"]![0]!["message"]!["reasoning_content"]);
        // Reasoning tokens: those of "<think>\nI add 2 and 2.\n</think>"; completion tokens add the answer and the end token.
        var tok = server.Model.Tokenizer;
        Assert.Equal(tok.Encode("<think>\nI add 2 and 2.\n</think>").Count, c.Usage.OutputTokenDetails.ReasoningTokenCount);
        Assert.Equal(tok.Encode(Reply).Count + 1, c.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task StreamedReasoningPrecedesContent()
    {
        await using var server = await Scripted(Reply, Options());
        var kinds = new List<(string Kind, string Text)>();
        await foreach (var u in Chat(server).CompleteChatStreamingAsync([new UserChatMessage("2+2?")]))
        {
            if (u.Patch.TryGetValue("$.choices[0].delta.reasoning_content"u8, out string? r) && r != null) kinds.Add(("reasoning", r));
            foreach (var part in u.ContentUpdate) if (part.Text.Length > 0) kinds.Add(("content", part.Text));
        }
        Assert.Equal("I add 2 and 2.", string.Concat(kinds.Where(k => k.Kind == "reasoning").Select(k => k.Text)).Trim('\n'));
        Assert.Equal("The answer is 4.", string.Concat(kinds.Where(k => k.Kind == "content").Select(k => k.Text)));
        int firstContent = kinds.FindIndex(k => k.Kind == "content");
        Assert.True(firstContent > 0 && kinds.Skip(firstContent).All(k => k.Kind == "content"), string.Join("|", kinds));
        Assert.True(kinds.Count(k => k.Kind == "reasoning") > 1, "reasoning should arrive token by token");
    }

    [Fact]
    public async Task TemplateThatOpensThinkMakesTheCompletionStartAsReasoning()
    {
        // DeepSeek-R1's template ends the generation prompt with "<think>\n": the model writes only the closing tag.
        var r1 = new ChatTemplate(File.ReadAllText(System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates", "deepseek_r1.jinja")), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
        Assert.True(r1.OpensThinkBlock);
        await using var server = await Scripted("Two and two.\n</think>\n\nFour.", Options(), template: r1);
        var chunks = await Sse(server, "/v1/chat/completions", """{"model":"scripted","stream":true,"messages":[{"role":"user","content":"2+2?"}]}""");
        string reasoning = string.Concat(chunks.Select(c => (string?)c["choices"]![0]!["delta"]!["reasoning_content"] ?? ""));
        string content = string.Concat(chunks.Select(c => (string?)c["choices"]![0]!["delta"]!["content"] ?? ""));
        Assert.Equal("Two and two.\n", reasoning);
        Assert.Equal("Four.", content);
    }

    [Fact]
    public async Task FullQueueAnswers429()
    {
        await using var server = await Scripted(string.Concat(Enumerable.Repeat("la ", 200)), Options(maxBatch: 1, maxQueue: 1), delayMs: 20);
        var chat = Chat(server);
        using var cts = new CancellationTokenSource();
        var running = chat.CompleteChatAsync([new UserChatMessage("a")], new ChatCompletionOptions(), cts.Token);
        await WaitHealth(server, h => (int)h["running"]! == 1);
        var queued = chat.CompleteChatAsync([new UserChatMessage("b")], new ChatCompletionOptions(), cts.Token);
        await WaitHealth(server, h => (int)h["waiting"]! == 1);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("c")]));
        Assert.Equal(429, e.Status);
        Assert.Contains("queue_full", e.Message);
        cts.Cancel(); // both clients leave: their sequences go, running and waiting alike
        await WaitHealth(server, h => (int)h["running"]! == 0 && (int)h["waiting"]! == 0);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
    }

    [Fact]
    public async Task DisconnectMidStreamFreesTheSlotAtOnce()
    {
        // 20 ms a token: 100 tokens are 2 s, so a slot still busy 2 s after the hang-up is a failure even on a loaded CI
        // machine. The client must really hang up: .NET's default handler drains a dropped response for up to 2 s to
        // reuse the connection (81 to 128 tokens passed that way), so Chat() uses a transport that does not.
        await using var server = await Scripted(string.Concat(Enumerable.Repeat("la ", 200)), Options(maxBatch: 2), delayMs: 20);
        int seen = 0;
        await foreach (var u in Chat(server).CompleteChatStreamingAsync([new UserChatMessage("go")]))
            if (u.ContentUpdate.Count > 0 && ++seen == 3) break; // leaving the loop disposes the response: the client hangs up
        var h = await WaitHealth(server, h => (int)h["running"]! == 0, seconds: 5);
        Assert.True((long)h["tokens"]! < 100, $"the sequence ran on after the client left: {h.ToJsonString()}");
        // The freed slot serves the next client.
        var next = await Chat(server).CompleteChatAsync([new UserChatMessage("again")], new ChatCompletionOptions { MaxOutputTokenCount = 3 });
        Assert.Equal(ChatFinishReason.Length, next.Value.FinishReason);
    }

    [Fact]
    public async Task RequestsJoinAndLeaveTheBatchBetweenTokens()
    {
        await using var server = await Scripted(string.Concat(Enumerable.Repeat("la ", 200)), Options(maxBatch: 2), delayMs: 10);
        var chat = Chat(server);
        var longOne = chat.CompleteChatAsync([new UserChatMessage("long")], new ChatCompletionOptions { MaxOutputTokenCount = 150 });
        await WaitHealth(server, h => (long)h["tokens"]! >= 10);
        // A short request joins the running batch (no waiting for the long one) and leaves as soon as it is done.
        var shortOne = await chat.CompleteChatAsync([new UserChatMessage("short")], new ChatCompletionOptions { MaxOutputTokenCount = 5 });
        Assert.Equal(5, shortOne.Value.Usage.OutputTokenCount);
        // The loop posts a sequence's last event, then frees its slot: /health may lag the response by that instant
        // (a loaded test run once saw it), so wait for the slot, briefly, while the long one goes on.
        var h = await WaitHealth(server, h => (int)h["running"]! <= 1, seconds: 1);
        Assert.Equal(1, (int)h["running"]!);      // the long one is still decoding
        Assert.False(longOne.IsCompleted);
        Assert.Equal(150, (await longOne).Value.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task ApiKeyIsRequiredWhenSet()
    {
        await using var server = await Scripted(Reply, Options(apiKey: "s3cret"));
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat(server, "wrong").CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(401, e.Status);
        var (status, body) = await Post(server, "/v1/chat/completions", """{"model":"scripted","messages":[{"role":"user","content":"x"}]}""");
        Assert.Equal(401, status);
        Assert.Equal("invalid_api_key", (string?)body["error"]!["code"]);
        var ok = await Chat(server, "s3cret").CompleteChatAsync([new UserChatMessage("x")]);
        Assert.Equal("The answer is 4.", ok.Value.Content[0].Text);
        Assert.Equal("ok", (string?)(await Get(server, "/health"))["status"]); // health stays open for probes
    }

    [Theory]
    [InlineData("{\"model\":\"scripted\",\"messages\":[", "invalid_json", null)]
    [InlineData("[1,2]", "invalid_json", null)]
    [InlineData("{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model_not_found", "model")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "missing_required_parameter", "model")]
    [InlineData("{\"model\":\"scripted\",\"messages\":\"hello\"}", "invalid_type", "messages")]
    [InlineData("{\"model\":\"scripted\",\"messages\":[{\"role\":\"user\",\"content\":42}]}", "invalid_type", "messages[0].content")]
    [InlineData("{\"model\":\"scripted\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "invalid_value", "messages[0].role")]
    [InlineData("{\"model\":\"scripted\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_type", "temperature")]
    [InlineData("{\"model\":\"scripted\",\"top_p\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_value", "top_p")]
    [InlineData("{\"model\":\"scripted\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_value", "max_tokens")]
    [InlineData("{\"model\":\"scripted\",\"max_tokens\":2.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_type", "max_tokens")]
    [InlineData("{\"model\":\"scripted\",\"max_tokens\":100000,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "context_length_exceeded", "max_tokens")]
    [InlineData("{\"model\":\"scripted\",\"n\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_value", "n")]
    [InlineData("{\"model\":\"scripted\",\"stop\":[1],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_type", "stop[0]")]
    [InlineData("{\"model\":\"scripted\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "invalid_type", "stream")]
    public async Task BadInputIs400WithAnOpenAiErrorObject(string body, string code, string? param)
    {
        await using var server = await Scripted(Reply, Options(context: 64));
        var (status, json) = await Post(server, "/v1/chat/completions", body);
        Assert.Equal(400, status);
        var error = json["error"]!.AsObject();
        Assert.Equal(code, (string?)error["code"]);
        Assert.Equal(param, (string?)error["param"]);
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
    }

    [Fact]
    public async Task PromptLongerThanTheContextIs400ThroughTheSdk()
    {
        await using var server = await Scripted(Reply, Options(context: 64));
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat(server).CompleteChatAsync([new UserChatMessage(string.Concat(Enumerable.Repeat("word ", 200)))]));
        Assert.Equal(400, e.Status);
        Assert.Contains("maximum context length is 64", e.Message);
        var (status, json) = await Post(server, "/v1/completions", """{"model":"scripted","prompt":{"text":"x"}}""");
        Assert.Equal(400, status);
        Assert.Equal("prompt", (string?)json["error"]!["param"]);
    }
}
