using System.Text.Json.Nodes;
using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>The Piston and SandboxFusion clients against local stubs that speak each protocol: verdicts through the
/// service (HumanEval in Python, MultiPL-E in C# sent as one file), retries on 500s and on the service's own errors
/// (never on a wrong answer), and one clear error when the service keeps failing or never answers.</summary>
[Collection(SandboxCollection.Name)]
public sealed class SandboxServiceTests(SandboxFixture fx) : IClassFixture<SandboxFixture>
{
    static readonly RemoteSandboxOptions Quick = new()
    {
        Endpoint = "http://unused", Concurrency = 2, Limits = SandboxFixture.Tight, MaxRetries = 2, FirstRetryDelay = TimeSpan.FromMilliseconds(20),
        RequestSlack = TimeSpan.FromSeconds(30),
    };

    static RemoteSandbox Client(SandboxServiceStub.Protocol protocol, SandboxServiceStub stub, RemoteSandboxOptions? options = null)
    {
        var o = (options ?? Quick) with { Endpoint = stub.Url };
        return protocol == SandboxServiceStub.Protocol.Piston ? new PistonSandbox(o) : new SandboxFusionSandbox(o);
    }

    static CodeRow Row(string file, Func<JsonObject, bool> which)
    {
        var line = File.ReadLines(SharedData.Path("benchmarks", file)).Select(l => JsonNode.Parse(l)!.AsObject()).First(which);
        return CodeRows.Parse(line, file)!;
    }

    [Theory]
    [InlineData(SandboxServiceStub.Protocol.Piston)]
    [InlineData(SandboxServiceStub.Protocol.SandboxFusion)]
    public async Task VerdictsThroughTheService(SandboxServiceStub.Protocol protocol)
    {
        await using var stub = await new SandboxServiceStub(protocol, fx.Sandbox).StartAsync();
        using var client = Client(protocol, stub);
        var py = Row("humaneval.jsonl", r => r["task_id"]!.GetValue<string>() == "HumanEval/53").Spec;
        Assert.True((await CodeJudge.JudgeAsync(client, py, "    return x + y\n", chat: false)).AllPassed);
        Assert.Equal(CodeVerdict.Failed, (await CodeJudge.JudgeAsync(client, py, "    return x - y\n", chat: false)).Verdict);
        var cs = Row("humaneval_cs.jsonl", r => r["name"]!.GetValue<string>() == "HumanEval_53_add").Spec;
        Assert.True((await CodeJudge.JudgeAsync(client, cs, "        return x + y;", chat: false)).AllPassed);
        Assert.Equal(CodeVerdict.Failed, (await CodeJudge.JudgeAsync(client, cs, "        return x - y;", chat: false)).Verdict);
        Assert.Equal(CodeVerdict.CompileError, (await CodeJudge.JudgeAsync(client, cs, "        return x + y", chat: false)).Verdict);
        var loop = await client.RunAsync(new CodeRun("python", "while True: pass", Limits: SandboxFixture.Tight with { WallSeconds = 1 }));
        Assert.Equal(CodeVerdict.Timeout, loop.Verdict);
        var echo = await client.RunAsync(new CodeRun("python", "print(input()[::-1])", Stdin: "abc\n"));
        Assert.Equal("cba\n", echo.Stdout);
        // A wrong answer is an answer: one request each, no retry.
        Assert.Equal(7, stub.Requests);
        Assert.Contains(stub.Received, b => (b["files"]?[0]?["content"] ?? b["code"])!.GetValue<string>().StartsWith("#define DEBUG\n"));
    }

    [Theory]
    [InlineData(SandboxServiceStub.Protocol.Piston, SandboxServiceStub.Fault.Http500)]
    [InlineData(SandboxServiceStub.Protocol.Piston, SandboxServiceStub.Fault.ServiceError)]
    [InlineData(SandboxServiceStub.Protocol.SandboxFusion, SandboxServiceStub.Fault.Http500)]
    [InlineData(SandboxServiceStub.Protocol.SandboxFusion, SandboxServiceStub.Fault.ServiceError)]
    public async Task TransientFailuresAreRetried(SandboxServiceStub.Protocol protocol, SandboxServiceStub.Fault fault)
    {
        await using var stub = await new SandboxServiceStub(protocol, fx.Sandbox) { Misbehave = fault, FaultyRequests = 2 }.StartAsync();
        using var client = Client(protocol, stub);
        var r = await client.RunAsync(new CodeRun("python", "print(6 * 7)"));
        Assert.Equal(CodeVerdict.Passed, r.Verdict);
        Assert.Equal("42\n", r.Stdout);
        Assert.Equal(3, stub.Requests);
    }

    [Theory]
    [InlineData(SandboxServiceStub.Protocol.Piston, SandboxServiceStub.Fault.Http500, "HTTP 500")]
    [InlineData(SandboxServiceStub.Protocol.SandboxFusion, SandboxServiceStub.Fault.ServiceError, "pod lost")]
    [InlineData(SandboxServiceStub.Protocol.Piston, SandboxServiceStub.Fault.Hang, "no answer within")]
    [InlineData(SandboxServiceStub.Protocol.SandboxFusion, SandboxServiceStub.Fault.Hang, "no answer within")]
    public async Task AServiceThatKeepsFailingIsOneClearError(SandboxServiceStub.Protocol protocol, SandboxServiceStub.Fault fault, string cause)
    {
        await using var stub = await new SandboxServiceStub(protocol, fx.Sandbox) { Misbehave = fault }.StartAsync();
        // A hung service is given the program's wall limit plus slack per try: 1 s + 0.2 s here, three tries.
        using var client = Client(protocol, stub, Quick with { Limits = SandboxFixture.Tight with { WallSeconds = 1 }, RequestSlack = TimeSpan.FromMilliseconds(200) });
        var e = await Assert.ThrowsAsync<R1SharpException>(() => client.RunAsync(new CodeRun("python", "print(1)")));
        Assert.Contains(stub.Url, e.Message);
        Assert.Contains(cause, e.Message);
        Assert.Contains("after 3 tries", e.Message);
        Assert.Equal(3, stub.Requests);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task UnsupportedLanguageIsOneClearError()
    {
        using var client = new PistonSandbox(Quick with { Endpoint = "http://127.0.0.1:9" });
        var e = await Assert.ThrowsAsync<R1SharpException>(() => client.RunAsync(new CodeRun("brainfuck", "+")));
        Assert.Contains("\"brainfuck\" is not supported", e.Message);
    }
}
