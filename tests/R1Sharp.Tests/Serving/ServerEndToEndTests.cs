using System.ClientModel;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Serving;
using R1Sharp.Text;
using static R1Sharp.Tests.Serving.ServingTestKit;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace R1Sharp.Tests.Serving;

/// <summary>One real tiny model served once for the class, plus the same folder loaded in-process as the reference.</summary>
public sealed class TinyServer : IAsyncLifetime
{
    public TempDir Dir { get; } = new();
    public OpenAiServer Server { get; private set; } = null!;
    public CausalLM ReferenceModel { get; private set; } = null!;
    public TextGenerator Reference { get; private set; } = null!;
    public string Folder { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Folder = TinyFolder(Dir, "tiny-a", seed: 7);
        (ReferenceModel, Reference) = ServingTestKit.Reference(Folder);
        Server = await Start(OpenAiServer.FromFolder(Folder, Options(maxBatch: 4, context: 256)));
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        ReferenceModel.Dispose();
        Dir.Dispose();
    }
}

public class ServerEndToEndTests(TinyServer fx) : IClassFixture<TinyServer>
{
    static readonly string[] Questions = ["What is 2 + 2?", "Name a prime number larger than ten, please.", "Hi", "Explain briefly why the sky is blue."];

    /// <summary>The in-process batched engine's greedy answer: the independent reference for the server's loop.</summary>
    TextCompletion Expected(string question, int maxTokens) => GreedyReply(fx.Reference, question, maxTokens);

    static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0f, MaxOutputTokenCount = maxTokens };

    [Fact]
    public async Task ModelsAndHealth()
    {
        var models = await Get(fx.Server, "/v1/models");
        Assert.Equal("tiny-a", models["data"]![0]!["id"]!.GetValue<string>());
        var health = await Get(fx.Server, "/health");
        Assert.Equal("ok", health["status"]!.GetValue<string>());
        Assert.Equal("0", health["weight_version"]!.GetValue<string>());
    }

    [Fact]
    public async Task ConcurrentGreedyChatsMatchTheInProcessEngine()
    {
        var chat = Chat(fx.Server);
        // Four clients at once: they share the batch, join at different steps and have prompts of different lengths.
        var tasks = Questions.Select((q, i) => chat.CompleteChatAsync([new UserChatMessage(q)], Greedy(12 + 5 * i))).ToArray();
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < Questions.Length; i++)
        {
            var want = Expected(Questions[i], 12 + 5 * i);
            var got = results[i].Value;
            Assert.Equal(want.Answer, got.Content.Count == 0 ? "" : got.Content[0].Text);
            Assert.Equal(want.PromptTokens, got.Usage.InputTokenCount);
            Assert.Equal(want.TokenIds.Length, got.Usage.OutputTokenCount);
            Assert.Equal(0, got.Usage.OutputTokenDetails.ReasoningTokenCount);
            Assert.Equal(want.FinishReason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop, got.FinishReason);
            Assert.Equal("0", results[i].GetRawResponse().Headers.TryGetValue(OpenAiServer.WeightVersionHeader, out var v) ? v : null);
        }
    }

    [Fact]
    public async Task StreamingGivesTheSameTextAsNonStreaming()
    {
        var chat = Chat(fx.Server);
        var want = Expected(Questions[1], 30);
        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage(Questions[1])], Greedy(30)))
        {
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            usage ??= u.Usage;
            finish ??= u.FinishReason;
        }
        Assert.Equal(want.Answer, text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage); // the SDK asks for stream_options.include_usage
        Assert.Equal(30, usage!.OutputTokenCount);
        Assert.Equal(want.PromptTokens, usage.InputTokenCount);
    }

    [Fact]
    public async Task StopStringsCutTheCompletion()
    {
        var full = Expected(Questions[3], 40);
        // A stop string taken from the middle of the free-running greedy text: the server must end right before it.
        string stop = full.Text.Substring(full.Text.Length / 2, Math.Min(3, full.Text.Length - full.Text.Length / 2));
        int cut = full.Text.IndexOf(stop, StringComparison.Ordinal);
        var options = Greedy(40);
        options.StopSequences.Add(stop);
        var got = (await Chat(fx.Server).CompleteChatAsync([new UserChatMessage(Questions[3])], options)).Value;
        Assert.Equal(full.Text[..cut], got.Content.Count == 0 ? "" : got.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, got.FinishReason);
        var streamed = await Sse(fx.Server, "/v1/chat/completions", new JsonObject
        {
            ["model"] = "tiny-a", ["stream"] = true, ["temperature"] = 0, ["max_tokens"] = 40, ["stop"] = new JsonArray(stop, "never-matches"),
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Questions[3] }),
        }.ToJsonString());
        Assert.Equal(full.Text[..cut], string.Concat(streamed.Select(c => (string?)c["choices"]![0]!["delta"]!["content"] ?? "")));
        Assert.Equal("stop", (string?)streamed[^1]["choices"]![0]!["finish_reason"]);
    }

    [Fact]
    public async Task SeveralChoicesWithASeed()
    {
        string Body(bool stream) => new JsonObject
        {
            ["model"] = "tiny-a", ["n"] = 3, ["seed"] = 11, ["temperature"] = 1.0, ["max_tokens"] = 8, ["stream"] = stream,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me a story." }),
        }.ToJsonString();
        var (status, a) = await Post(fx.Server, "/v1/chat/completions", Body(false));
        Assert.Equal(200, status);
        var texts = a["choices"]!.AsArray().Select(c => (string)c!["message"]!["content"]!).ToArray();
        Assert.Equal(3, texts.Length);
        Assert.Equal(3, texts.Distinct().Count()); // choice i samples with seed + i
        Assert.Equal(24, (int)a["usage"]!["completion_tokens"]!);
        var (_, b) = await Post(fx.Server, "/v1/chat/completions", Body(false));
        Assert.Equal(texts, b["choices"]!.AsArray().Select(c => (string)c!["message"]!["content"]!));
        var chunks = await Sse(fx.Server, "/v1/chat/completions", Body(true));
        for (int i = 0; i < 3; i++)
            Assert.Equal(texts[i], string.Concat(chunks.SelectMany(c => c["choices"]!.AsArray())
                .Where(c => (int)c!["index"]! == i).Select(c => (string?)c!["delta"]!["content"] ?? "")));
    }

    [Fact]
    public async Task TextCompletionsStreamedAndWhole()
    {
        string prompt = "The capital of France is";
        var want = fx.Reference.Generate([prompt], new SamplingOptions { Temperature = 0, MaxTokens = 10 })[0];
        var (status, whole) = await Post(fx.Server, "/v1/completions", $$"""{"model":"tiny-a","prompt":"{{prompt}}","max_tokens":10,"temperature":0}""");
        Assert.Equal(200, status);
        Assert.Equal(want.Text, (string)whole["choices"]![0]!["text"]!);
        Assert.Equal("text_completion", (string)whole["object"]!);
        var chunks = await Sse(fx.Server, "/v1/completions", $$"""{"model":"tiny-a","prompt":["{{prompt}}"],"max_tokens":10,"temperature":0,"stream":true}""");
        Assert.Equal(want.Text, string.Concat(chunks.Select(c => (string)c["choices"]![0]!["text"]!)));
    }

    [Fact]
    public async Task ReasoningContentSentBackIsDroppedFromThePrompt()
    {
        JsonObject Body(bool withReasoning)
        {
            var assistant = new JsonObject { ["role"] = "assistant", ["content"] = "4" };
            if (withReasoning) assistant["reasoning_content"] = "SECRET chain of thought that must not reach the prompt";
            return new JsonObject
            {
                ["model"] = "tiny-a", ["max_tokens"] = 1, ["temperature"] = 0,
                // The assistant turn comes last: Qwen3's template would render its reasoning there if it were passed on.
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "2+2?" }, assistant),
            };
        }
        var (_, plain) = await Post(fx.Server, "/v1/chat/completions", Body(false).ToJsonString());
        var (_, with) = await Post(fx.Server, "/v1/chat/completions", Body(true).ToJsonString());
        // A </think> block inside an assistant content is cut too, as DeepSeek-R1's template does.
        var inline = Body(false);
        inline["messages"]![1]!["content"] = "<think>\nSECRET\n</think>\n\n4";
        var (_, tagged) = await Post(fx.Server, "/v1/chat/completions", inline.ToJsonString());
        int expected = fx.Reference.Tokenizer.Encode(fx.Server.Model.Template!.Render([
            new R1Sharp.Text.ChatMessage("user", "2+2?"), new R1Sharp.Text.ChatMessage("assistant", "4")])).Count;
        Assert.Equal(expected, (int)plain["usage"]!["prompt_tokens"]!);
        Assert.Equal(expected, (int)with["usage"]!["prompt_tokens"]!);
        Assert.Equal(expected, (int)tagged["usage"]!["prompt_tokens"]!);
    }
}
