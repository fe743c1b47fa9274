using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Chat;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Serving;

/// <summary>The real `r1 serve` process: it binds a free port, answers an SDK client with its API key, refuses without.</summary>
public class ServeCommandTests
{
    [Fact]
    public async Task ServeProcessAnswersTheSdk()
    {
        using var dir = new TempDir();
        string folder = ServingTestKit.TinyFolder(dir, "tiny-cli", seed: 3);
        using var server = await ServeProcess.StartAsync(folder, ["--max-batch", "2", "--max-context", "128", "--api-key-env", "R1_TEST_KEY"],
            new Dictionary<string, string> { ["R1_TEST_KEY"] = "k-123" });
        var uri = server.BaseAddress;
        ChatClient Client(string key) => new("tiny-cli", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(uri, "v1"), RetryPolicy = new ClientRetryPolicy(0) });
        var reply = await Client("k-123").CompleteChatAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { MaxOutputTokenCount = 4, Temperature = 0f });
        Assert.Equal(ChatFinishReason.Length, reply.Value.FinishReason);
        Assert.Equal(4, reply.Value.Usage.OutputTokenCount);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Client("nope").CompleteChatAsync([new UserChatMessage("Hello")]));
        Assert.Equal(401, e.Status);
    }

    [Fact]
    public void AMissingApiKeyVariableIsOneClearLine()
    {
        var r = CliRunner.Run("serve", "--model", "/nonexistent", "--api-key-env", "R1_SURELY_UNSET_VARIABLE");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: --api-key-env R1_SURELY_UNSET_VARIABLE: that environment variable is not set or empty", r.Stderr.Trim());
    }
}
