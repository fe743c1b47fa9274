using System.Net;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace R1Sharp.Board;

/// <summary>What `r1 board` serves and where.</summary>
public sealed record BoardOptions
{
    public IReadOnlyList<string> Folders { get; init; } = ["runs"];
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 6006;
    /// <summary>When set, every request needs it: as a bearer token, or once as ?key= (which leaves a cookie).</summary>
    public string? ApiKey { get; init; }
    /// <summary>How often the files are looked at for changes; the page hears of them through server-sent events.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// `r1 board`: one page over the run folders below the given ones (curves, rollouts, evals, pipelines), served by
/// ASP.NET Core like `r1 serve`. The page and its scripts (uPlot, vendored) are resources of this assembly: nothing is
/// fetched from elsewhere. Files are read as they are written, never changed. A request about a run never fails with
/// a server error because of what is in the run's files: unreadable lines become notes on the page.
/// </summary>
public sealed class BoardServer : IAsyncDisposable
{
    const string KeyCookie = "r1board_key";
    static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    readonly WebApplication app;
    readonly BoardOptions options;
    readonly CancellationTokenSource stopping = new();
    readonly object changeGate = new();
    TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    Task? poller;
    long version;

    public RunCatalog Catalog { get; }
    public Uri? BaseAddress { get; private set; }

    public BoardServer(BoardOptions options)
    {
        if (options.Folders.Count == 0) throw new R1SharpException("r1 board: give at least one run folder");
        if (options.Port is < 0 or > 65535) throw new R1SharpException($"--port must be between 0 and 65535, got {options.Port}");
        if (options.PollInterval <= TimeSpan.Zero) throw new R1SharpException("the poll interval must be positive");
        var address = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out var ip) ? ip : throw new R1SharpException($"--host {Excerpt.Quote(options.Host)} is not an IP address");
        this.options = options;
        Catalog = new RunCatalog(options.Folders);
        foreach (var r in Catalog.Runs) r.Poll();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, options.Port));
        app = builder.Build();
        Map();
    }

    public async Task<Uri> StartAsync(CancellationToken cancel = default)
    {
        await app.StartAsync(cancel);
        var bound = app.Services.GetService(typeof(IServer)) is IServer s ? s.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() : null;
        BaseAddress = new Uri((bound ?? $"http://{options.Host}:{options.Port}").Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1"));
        poller = Task.Run(PollLoop);
        return BaseAddress;
    }

    public Task WaitForShutdownAsync(CancellationToken cancel = default) => app.WaitForShutdownAsync(cancel);

    void Map()
    {
        app.MapGet("/", Guard(ctx => Asset(ctx, "index.html")));
        app.MapGet("/static/{name}", Guard(ctx => Asset(ctx, (string)ctx.Request.RouteValues["name"]!)));
        app.MapGet("/api/runs", Guard(ctx => Json(ctx, Catalog.Describe())));
        app.MapGet("/api/metrics", Guard(ctx =>
        {
            var run = Run(ctx);
            var m = run.MetricsSeries ?? throw new BoardRequestException($"run {run.Id} has no {BoardRun.Metrics}", 404);
            int from = IntQuery(ctx, "from") ?? 0;
            if (IntQuery(ctx, "generation") is int g && g != m.Generation) from = 0; // the file was rewritten: send it all
            var j = m.ToJson(from);
            j["run"] = run.Id;
            return Json(ctx, j);
        }));
        app.MapGet("/api/rollouts/summary", Guard(ctx => Json(ctx, Rollouts(ctx).Summary())));
        app.MapGet("/api/rollouts", Guard(ctx =>
        {
            var index = Rollouts(ctx);
            var q = new RolloutQuery(IntQuery(ctx, "step"), Query(ctx, "filter") ?? "all", Query(ctx, "sort") ?? "natural", Query(ctx, "q"),
                IntQuery(ctx, "offset") ?? 0, IntQuery(ctx, "limit") ?? 50);
            return Json(ctx, index.Query(q));
        }));
        app.MapGet("/api/eval", Guard(ctx => Json(ctx, Eval(Run(ctx)).ToJson())));
        app.MapGet("/api/eval/problem", Guard(ctx => Json(ctx, Eval(Run(ctx)).Problem(Query(ctx, "id") ?? throw new BoardRequestException("which problem? add &id=PROBLEM_ID")))));
        app.MapGet("/api/compare", Guard(ctx => Json(ctx, EvalComparison.Compare(Catalog.Get(Query(ctx, "a")), Catalog.Get(Query(ctx, "b"))))));
        app.MapGet("/api/pipeline", Guard(ctx =>
        {
            var run = Run(ctx);
            if (run.Kind != "group") throw new BoardRequestException($"run {run.Id} is a {run.Kind} run, not a group of stages");
            return Json(ctx, Catalog.Pipeline(run));
        }));
        app.MapGet("/api/report", Guard(ctx =>
        {
            var run = Run(ctx);
            string path = Path.Combine(run.Dir, BoardRun.Report);
            if (!File.Exists(path)) throw new BoardRequestException($"run {run.Id} has no {BoardRun.Report}", 404);
            return Json(ctx, new JsonObject { ["run"] = run.Id, ["text"] = RunCatalog.ReadCapped(path) });
        }));
        app.MapGet("/api/events", Guard(Events));
        app.MapFallback(Guard(ctx => throw new BoardRequestException($"no route {ctx.Request.Method} {ctx.Request.Path}", 404)));
    }

    BoardRun Run(HttpContext ctx) => Catalog.Get(Query(ctx, "run"));

    RolloutIndex Rollouts(HttpContext ctx)
    {
        var run = Run(ctx);
        return run.RolloutIndex ?? throw new BoardRequestException($"run {run.Id} has no {BoardRun.Rollouts}", 404);
    }

    static EvalRun Eval(BoardRun run) => run.EvalRun ?? throw new BoardRequestException($"run {run.Id} is not an evaluation (no {BoardRun.Samples})", 404);

    static string? Query(HttpContext ctx, string name) => ctx.Request.Query.TryGetValue(name, out var v) && v.Count > 0 && !string.IsNullOrEmpty(v[0]) ? v[0] : null;

    static int? IntQuery(HttpContext ctx, string name)
    {
        if (Query(ctx, name) is not { } s) return null;
        return int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v
            : throw new BoardRequestException($"{name} must be a whole number, got {Excerpt.Quote(s, 30)}");
    }

    /// <summary>Server-sent events: "runs" when the set of runs changed, "change" with the ids of runs whose files
    /// changed. A comment every 15 s keeps proxies from closing an idle stream.</summary>
    async Task Events(HttpContext ctx)
    {
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping.Token);
        var seen = Catalog.Runs.ToDictionary(r => r.Id, r => r.Version);
        await ctx.Response.WriteAsync("retry: 2000\nevent: hello\ndata: {}\n\n", cancel.Token);
        await ctx.Response.Body.FlushAsync(cancel.Token);
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                Task wait;
                lock (changeGate) wait = changed.Task;
                await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(15), cancel.Token));
                cancel.Token.ThrowIfCancellationRequested();
                var now = Catalog.Runs.ToDictionary(r => r.Id, r => r.Version);
                if (!now.Keys.ToHashSet().SetEquals(seen.Keys))
                    await ctx.Response.WriteAsync("event: runs\ndata: {}\n\n", cancel.Token);
                var changedRuns = now.Where(kv => !seen.TryGetValue(kv.Key, out long v) || v != kv.Value).Select(kv => (JsonNode?)kv.Key).ToArray();
                if (changedRuns.Length > 0)
                    await ctx.Response.WriteAsync($"event: change\ndata: {new JsonObject { ["runs"] = new JsonArray(changedRuns) }.ToJsonString(Compact)}\n\n", cancel.Token);
                else if (!wait.IsCompleted)
                    await ctx.Response.WriteAsync(": idle\n\n", cancel.Token);
                seen = now;
                await ctx.Response.Body.FlushAsync(cancel.Token);
            }
        }
        catch (OperationCanceledException) { } // the page went away, or the board is stopping
        catch (IOException) { }
    }

    /// <summary>Looks at the runs' files every poll interval (and for new runs every few intervals) and wakes the
    /// event streams when something changed.</summary>
    async Task PollLoop()
    {
        int tick = 0;
        while (!stopping.IsCancellationRequested)
        {
            try { await Task.Delay(options.PollInterval, stopping.Token); }
            catch (OperationCanceledException) { return; }
            bool any = false;
            try
            {
                if (tick++ % 3 == 0 && Catalog.Rescan()) any = true;
                foreach (var r in Catalog.Runs)
                    if (r.Poll()) { r.Version = Interlocked.Increment(ref version); any = true; }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a folder vanished mid-walk: next tick
            if (any)
                lock (changeGate)
                {
                    changed.TrySetResult();
                    changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
        }
    }

    /// <summary>The API key check, then the route. Whatever a run's files hold, the answer is a page or JSON with a
    /// message: a request the board cannot answer is 400/404 with what to change, an unreadable file 422.</summary>
    RequestDelegate Guard(Func<HttpContext, Task> route) => async ctx =>
    {
        try
        {
            if (options.ApiKey is { } key && !Authorized(ctx, key))
                throw new BoardRequestException("this board needs its key: open the address r1 board printed (with ?key=…) or send Authorization: Bearer <key>", 401);
            ctx.Response.Headers.CacheControl = "no-store";
            await route(ctx);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is not OperationCanceledException)
        {
            (int status, string message) = e switch
            {
                BoardRequestException b => (b.Status, b.Message),
                IOException or UnauthorizedAccessException => (422, $"cannot read the run's files: {e.Message}"),
                JsonException => (422, $"a run file is not what the board expected: {e.Message}"),
                _ => (500, $"internal error: {e.GetType().Name}: {e.Message}"),
            };
            ctx.Response.StatusCode = status;
            await Json(ctx, new JsonObject { ["error"] = message, ["status"] = status });
        }
    };

    /// <summary>Bearer header (constant-time compare, as r1 serve), the cookie a first ?key= visit left, or ?key= itself.</summary>
    static bool Authorized(HttpContext ctx, string key)
    {
        static bool Same(string? sent, string key) => sent is not null &&
            System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(sent), System.Text.Encoding.UTF8.GetBytes(key));
        string header = ctx.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && Same(header[7..].Trim(), key)) return true;
        if (Same(ctx.Request.Cookies[KeyCookie], key)) return true;
        if (Same(Query(ctx, "key"), key))
        {
            ctx.Response.Cookies.Append(KeyCookie, key, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });
            return true;
        }
        return false;
    }

    static Task Json(HttpContext ctx, JsonNode body)
    {
        ctx.Response.ContentType = "application/json; charset=utf-8";
        return ctx.Response.WriteAsync(body.ToJsonString(Compact), ctx.RequestAborted);
    }

    static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8", [".js"] = "text/javascript; charset=utf-8", [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml", [".png"] = "image/png", [".txt"] = "text/plain; charset=utf-8", [".LICENSE"] = "text/plain; charset=utf-8",
    };

    static async Task Asset(HttpContext ctx, string name)
    {
        var assembly = typeof(BoardServer).Assembly;
        using var stream = (name.Contains("..") ? null : assembly.GetManifestResourceStream("R1Sharp.Board.wwwroot." + name))
            ?? throw new BoardRequestException($"no file {Excerpt.Quote(name, 60)}", 404);
        ctx.Response.ContentType = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
        await stream.CopyToAsync(ctx.Response.Body, ctx.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        stopping.Cancel();
        if (poller is not null) await poller;
        await app.StopAsync();
        await app.DisposeAsync();
        stopping.Dispose();
    }
}
