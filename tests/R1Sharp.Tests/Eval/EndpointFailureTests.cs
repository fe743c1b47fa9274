using System.Net.Http;
using System.Net.Sockets;
using R1Sharp.Eval;
using R1Sharp.Generation;
using R1Sharp.Tests.BadInput;
using R1Sharp.Tests.Training;
using R1Sharp.Training;

namespace R1Sharp.Tests.Eval;

/// <summary>Endpoints that refuse, hang, answer garbage or a 500: `r1 eval --endpoint` and GRPO's rollout servers end
/// with one line naming the endpoint and the cause, after a few quick retries, never with a trace or a long hang.</summary>
public class EndpointFailureTests
{
    // Retries as in production but waits of milliseconds, so a test of a dead endpoint costs little.
    static readonly EndpointPolicy Fast = new() { FirstRetryDelay = TimeSpan.FromMilliseconds(5) };

    static R1SharpException Eval(string url, EndpointPolicy? policy = null)
    {
        using var dir = new TempDir();
        using var backend = new EndpointBackend(url, "m", null, concurrency: 1, policy ?? Fast);
        var problems = new[] { new BenchProblem("p0", "What is 1+1?", "2"), new BenchProblem("p1", "What is 2+2?", "4") };
        using var log = new ResultsLog(dir.File("samples.jsonl"));
        var task = EvalRunner.RunAsync(problems, 2, new EvalSettings { Model = "m", MaxTokens = 8 }, backend, log);
        Assert.True(task.ContinueWith(_ => { }).Wait(TimeSpan.FromSeconds(60)), "the eval did not end within 60 s");
        return Assert.Throws<R1SharpException>(() => task.GetAwaiter().GetResult());
    }

    static void OneLine(string message, string names)
    {
        Assert.Contains(names, message);
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain(" at ", message);
        Assert.True(message.Length < 500, $"{message.Length} characters: {message}");
    }

    [Fact]
    public void ConnectionRefused_IsOneLineNamingTheEndpoint_AfterAFewQuickRetries()
    {
        string url = StubEndpoint.ClosedPort();
        var e = Eval(url);
        OneLine(e.Message, $"endpoint {url}");
        Assert.Contains("connection refused", e.Message);
        Assert.Contains("gave up after 4 tries", e.Message);
    }

    [Fact]
    public void ABodyThatIsNotJson_IsNamed()
    {
        using var stub = StubEndpoint.Answering(200, "<html>\u0000\u001b[31mnot json</html>");
        var e = Eval(stub.Url);
        OneLine(e.Message, $"endpoint {stub.Url}");
        Assert.Contains("not JSON", e.Message);
        Assert.DoesNotContain('\u0000', e.Message);
        Assert.DoesNotContain('\u001b', e.Message);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"choices": []}""")]
    [InlineData("""{"choices": [{"message": {"content": 42}}]}""")]
    [InlineData("[1, 2, 3]")]
    [InlineData("\"text\"")]
    public void AWrongJsonShape_IsNamed_NotAnEmptySampleGradedWrong(string body)
    {
        using var stub = StubEndpoint.Answering(200, body);
        var e = Eval(stub.Url);
        OneLine(e.Message, $"endpoint {stub.Url}");
        Assert.Contains("not a chat completion", e.Message);
    }

    [Fact]
    public void A500_KeepsTheServersErrorText()
    {
        using var stub = StubEndpoint.Answering(500, """{"error": {"message": "CUDA out of memory on device 0", "type": "server_error"}}""");
        var e = Eval(stub.Url);
        OneLine(e.Message, $"endpoint {stub.Url}");
        Assert.Contains("HTTP 500", e.Message);
        Assert.Contains("CUDA out of memory on device 0", e.Message);
        Assert.Equal(4, stub.Requests); // 500 is retried: three quick retries per request, then the run stops
    }

    [Fact]
    public void AnEndpointThatNeverAnswers_TimesOutWithoutRetry_AndTheWaitIsVisible()
    {
        using var stub = StubEndpoint.Silent();
        var policy = Fast with { RequestTimeout = TimeSpan.FromSeconds(1) };
        using var backend = new EndpointBackend(stub.Url, "m", null, concurrency: 1, policy);
        using var dir = new TempDir();
        using var log = new ResultsLog(dir.File("samples.jsonl"));
        var task = EvalRunner.RunAsync([new BenchProblem("p0", "1+1?", "2")], 1, new EvalSettings { Model = "m", MaxTokens = 8 }, backend, log);
        // While the request waits, the backend says what for (the CLI prints it as progress).
        string? waiting = null;
        for (int i = 0; i < 100 && waiting is null && !task.IsCompleted; i++) { Thread.Sleep(20); waiting = backend.Waiting(TimeSpan.Zero); }
        Assert.NotNull(waiting);
        Assert.Contains($"waiting for {stub.Url}", waiting);
        Assert.Contains("request timeout 1 s", waiting);
        var e = Assert.Throws<R1SharpException>(() => task.GetAwaiter().GetResult());
        OneLine(e.Message, $"endpoint {stub.Url}");
        Assert.Contains("no answer within 1 s", e.Message);
        Assert.Equal(1, stub.Requests);
    }

    [Fact]
    public void AnUnresolvableHost_IsSaidSo()
    {
        // Built rather than looked up: a test sends no DNS query off this machine.
        var e = new HttpRequestException("Name or service not known (nohost.invalid:80)", new SocketException((int)SocketError.HostNotFound));
        Assert.StartsWith("the host name does not resolve", new EndpointPolicy().Describe(new AggregateException(e, e)));
    }

    // GRPO's rollout servers: the weight hand-over (the first request of a run) and the completions.

    static R1SharpException Publish(string url, EndpointPolicy? policy = null)
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        using var remote = new EndpointRolloutSource([url], Path.Combine(dir.Path, "w"), tok, policy: policy ?? Fast);
        return Assert.Throws<R1SharpException>(() => remote.PublishWeights(model, 0));
    }

    [Fact]
    public void Rollouts_ConnectionRefused()
    {
        string url = StubEndpoint.ClosedPort();
        var e = Publish(url);
        OneLine(e.Message, $"rollout server {url[..^3]}: POST /update_weights_from_disk failed: connection refused");
    }

    [Fact]
    public void Rollouts_NotJson_500_AndSilence()
    {
        using (var stub = StubEndpoint.Answering(200, "\u0000\u0001garbage"))
        {
            var e = Publish(stub.Url);
            OneLine(e.Message, $"rollout server {stub.Root}");
            Assert.Contains("not JSON", e.Message);
            Assert.DoesNotContain('\u0000', e.Message);
        }
        using (var stub = StubEndpoint.Answering(500, """{"detail": "weights folder unreadable"}"""))
        {
            var e = Publish(stub.Url);
            OneLine(e.Message, $"rollout server {stub.Root}");
            Assert.Contains("HTTP 500", e.Message);
            Assert.Contains("weights folder unreadable", e.Message);
        }
        using (var stub = StubEndpoint.Silent())
        {
            var e = Publish(stub.Url, Fast with { RequestTimeout = TimeSpan.FromSeconds(1) });
            OneLine(e.Message, $"rollout server {stub.Root}");
            Assert.Contains("no answer within 1 s", e.Message);
        }
    }

    [Theory]
    [InlineData("""{"choices": "none"}""")]
    [InlineData("""{"choices": [{"index": 0, "token_ids": ["a"]}, {"index": 1, "token_ids": [1]}]}""")]
    [InlineData("""{"choices": [{"index": 0, "token_ids": [99999999]}, {"index": 1, "token_ids": [1]}]}""")]
    [InlineData("""{"choices": [{"index": "zero"}]}""")]
    public void Rollouts_AWrongCompletionShape_IsNamed(string completion)
    {
        using var stub = StubEndpoint.Routes(new()
        {
            ["/update_weights_from_disk"] = (200, """{"success": true, "weight_version": "step-0"}"""),
            ["/v1/models"] = (200, """{"data": [{"id": "m"}]}"""),
            ["/v1/completions"] = (200, completion),
        });
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        using var remote = new EndpointRolloutSource([stub.Url], Path.Combine(dir.Path, "w"), tok, policy: Fast);
        remote.PublishWeights(model, 0);
        var e = Assert.Throws<R1SharpException>(() => remote.Generate([[1, 2, 3]], 2, new SamplingOptions { MaxTokens = 4, Seed = 1 }, [0]));
        OneLine(e.Message, $"rollout server {stub.Root}");
    }
}
