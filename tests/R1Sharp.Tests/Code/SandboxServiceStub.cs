using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>
/// A local stand-in for a sandbox service that speaks Piston's /api/v2/execute or SandboxFusion's /run_code: it runs
/// the one file it is sent in the local sandbox (so the client's request — the file with its harness, the language, the
/// stdin, the limits — is really exercised) and answers in the service's own shape. It can also misbehave: answer 500
/// (or the service's internal-error status) for the first N requests, or accept requests and never answer.
/// </summary>
public sealed class SandboxServiceStub : IAsyncDisposable
{
    public enum Protocol { Piston, SandboxFusion }
    public enum Fault { None, Http500, ServiceError, Hang }

    readonly WebApplication app;
    readonly LocalSandbox sandbox;
    int requests;
    public int Requests => requests;
    public Fault Misbehave { get; set; }
    /// <summary>How many requests misbehave before the stub answers properly (int.MaxValue: all).</summary>
    public int FaultyRequests { get; set; } = int.MaxValue;
    public List<JsonObject> Received { get; } = [];
    public string Url { get; private set; } = "";

    public SandboxServiceStub(Protocol protocol, LocalSandbox sandbox)
    {
        this.sandbox = sandbox;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        app = builder.Build();
        app.MapPost(protocol == Protocol.Piston ? "/api/v2/execute" : "/run_code", async (HttpContext ctx) =>
        {
            int n = Interlocked.Increment(ref requests);
            var body = (await JsonNode.ParseAsync(ctx.Request.Body))!.AsObject();
            lock (Received) Received.Add(body);
            if (Misbehave != Fault.None && n <= FaultyRequests)
            {
                switch (Misbehave)
                {
                    case Fault.Http500: return Results.Text("{\"message\":\"internal\"}", "application/json", statusCode: 500);
                    case Fault.Hang: await Task.Delay(Timeout.Infinite, ctx.RequestAborted); break;
                    case Fault.ServiceError:
                        return Results.Json(protocol == Protocol.Piston
                            ? new JsonObject { ["run"] = new JsonObject { ["status"] = "XX", ["message"] = "box crashed" } }
                            : new JsonObject { ["status"] = "SandboxError", ["message"] = "pod lost" });
                }
            }
            return Results.Json(protocol == Protocol.Piston ? await Piston(body) : await Fusion(body));
        });
    }

    public async Task<SandboxServiceStub> StartAsync()
    {
        await app.StartAsync();
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Url = bound.Replace("[::]", "127.0.0.1");
        return this;
    }

    static string Language(string name) => name switch { "python" => "python", "csharp" => "csharp", _ => name };

    async Task<JsonObject> Piston(JsonObject body)
    {
        string code = body["files"]![0]!["content"]!.GetValue<string>();
        var limits = SandboxFixture.Tight with { WallSeconds = body["run_timeout"]!.GetValue<long>() / 1000.0 };
        var r = await sandbox.RunAsync(new CodeRun(Language(body["language"]!.GetValue<string>()), code, Stdin: body["stdin"]?.GetValue<string>(), Limits: limits));
        if (r.Verdict == CodeVerdict.CompileError)
            return new JsonObject { ["compile"] = new JsonObject { ["stdout"] = "", ["stderr"] = r.Detail, ["code"] = 1, ["signal"] = null }, ["run"] = new JsonObject() };
        var run = new JsonObject { ["stdout"] = r.Stdout, ["stderr"] = r.Stderr, ["code"] = r.ExitCode, ["signal"] = null, ["wall_time"] = (int)r.Wall.TotalMilliseconds };
        if (r.Verdict == CodeVerdict.Timeout) { run["status"] = "TO"; run["signal"] = "SIGKILL"; run["code"] = null; }
        if (r.Verdict == CodeVerdict.OutputLimit) run["status"] = "OL";
        return new JsonObject { ["language"] = body["language"]!.GetValue<string>(), ["version"] = "3.11.0", ["run"] = run };
    }

    async Task<JsonObject> Fusion(JsonObject body)
    {
        string code = body["code"]!.GetValue<string>();
        var limits = SandboxFixture.Tight with { WallSeconds = body["run_timeout"]!.GetValue<double>() };
        var r = await sandbox.RunAsync(new CodeRun(Language(body["language"]!.GetValue<string>()), code, Stdin: body["stdin"]?.GetValue<string>(), Limits: limits));
        if (r.Verdict == CodeVerdict.CompileError)
            return new JsonObject
            {
                ["status"] = "Failed", ["message"] = "",
                ["compile_result"] = new JsonObject { ["status"] = "Finished", ["return_code"] = 1, ["stdout"] = r.Detail, ["stderr"] = "", ["execution_time"] = 0.1 },
                ["run_result"] = null,
            };
        return new JsonObject
        {
            ["status"] = r.Ok ? "Success" : "Failed", ["message"] = "", ["compile_result"] = null,
            ["run_result"] = new JsonObject
            {
                ["status"] = r.Verdict == CodeVerdict.Timeout ? "TimeLimitExceeded" : r.ExitCode is null ? "Error" : "Finished",
                ["return_code"] = r.ExitCode, ["stdout"] = r.Stdout, ["stderr"] = r.Stderr, ["execution_time"] = r.Wall.TotalSeconds,
            },
        };
    }

    public async ValueTask DisposeAsync()
    {
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2))) await app.StopAsync(stop.Token);
        await app.DisposeAsync();
    }
}
