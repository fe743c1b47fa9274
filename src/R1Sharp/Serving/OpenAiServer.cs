using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using R1Sharp.Generation;

namespace R1Sharp.Serving;

/// <summary>
/// `r1 serve`: an OpenAI-compatible HTTP server (chat and text completions, SSE streaming, /v1/models, /health) with
/// DeepSeek's reasoning_content convention, one continuously batched generation loop shared by all requests, and
/// SGLang's POST /update_weights_from_disk so a trainer elsewhere can hand over new weights between steps.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    public const string WeightVersionHeader = "X-Weight-Version";
    readonly WebApplication app;
    readonly IDecodeBackend backend;
    readonly ServeOptions options;
    readonly CompletionHandler handler;
    int maxN => options.MaxBatch + options.MaxQueue;

    public ServedModel Model { get; }
    public ContinuousBatcher Batcher { get; }
    /// <summary>Where the server listens, known once started (port 0 picks a free one).</summary>
    public Uri? BaseAddress { get; private set; }

    /// <param name="backend">owned from now on</param>
    public OpenAiServer(ServedModel model, IDecodeBackend backend, ServeOptions options)
    {
        options.Validate();
        Model = model; this.backend = backend; this.options = options;
        Batcher = new ContinuousBatcher(backend, options.MaxQueue);
        handler = new CompletionHandler(model, Batcher, options.RequestTimeout);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        var address = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out var ip) ? ip : throw new R1SharpException($"--host \"{options.Host}\" is not an IP address");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, options.Port);
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
        });
        app = builder.Build();
        Map();
    }

    /// <summary>Loads a model folder and serves it: weights into a <see cref="ModelBackend"/>, its tokenizer,
    /// chat template, end tokens and generation_config.json's sampling as request defaults.</summary>
    public static OpenAiServer FromFolder(string dir, ServeOptions options, string? device = null, string? dtype = null)
    {
        var lm = LocalModel.Load(dir, device, dtype, options.Adapter);
        var adapters = new Dictionary<string, int>();
        try
        {
            foreach (var (loraName, loraDir) in options.Loras)
            {
                if (loraName == (options.ModelName ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/'))))
                    throw new R1SharpException($"--lora {loraName}: the name is the base model's; choose another");
                adapters[loraName] = Models.Lora.LoraModel.Of(lm.Model).Load(loraDir, loraName);
            }
        }
        catch { lm.Dispose(); throw; }
        // Requests naming the base get the base (or --adapter's model), never the first --lora.
        if (lm.Model.Lora is { } lora) lora.Routing.Active = options.Adapter is null ? -1 : 0;
        int capacity = options.MaxContext ?? Math.Min(lm.Model.Config.MaxPositionEmbeddings, 4096);
        var backend = new ModelBackend(lm.Model, options.MaxBatch, capacity);
        string name = options.ModelName ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/'));
        var served = new ServedModel(name, lm.Tokenizer, lm.Template, lm.Generator.EosIds.ToHashSet(), lm.DefaultSampling(), adapters.Count > 0 ? adapters : null);
        return new OpenAiServer(served, backend, options);
    }

    public async Task<Uri> StartAsync(CancellationToken cancel = default)
    {
        await app.StartAsync(cancel);
        var bound = app.Services.GetService(typeof(IServer)) is IServer s ? s.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() : null;
        BaseAddress = new Uri((bound ?? $"http://{options.Host}:{options.Port}").Replace("[::]", "127.0.0.1"));
        return BaseAddress;
    }

    public Task WaitForShutdownAsync(CancellationToken cancel = default) => app.WaitForShutdownAsync(cancel);

    void Map()
    {
        app.MapGet("/health", ctx =>
        {
            var s = Batcher.Stats();
            return WriteJson(ctx, 200, new JsonObject
            {
                ["status"] = "ok", ["model"] = Model.Name, ["weight_version"] = s.WeightVersion, ["running"] = s.Running,
                ["waiting"] = s.Waiting, ["slots"] = s.Slots, ["steps"] = s.Steps, ["tokens"] = s.Tokens,
            });
        });
        app.MapGet("/get_weight_version", ctx => WriteJson(ctx, 200, new JsonObject { ["weight_version"] = Batcher.WeightVersion }));
        app.MapGet("/v1/models", Guard(ctx => WriteJson(ctx, 200, new JsonObject
        {
            ["object"] = "list",
            // vLLM lists each LoRA module after the base, with the base as its parent.
            ["data"] = new JsonArray(Model.Names.Select(n => (JsonNode)new JsonObject
            {
                ["id"] = n, ["object"] = "model", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                ["owned_by"] = "r1sharp", ["root"] = n, ["parent"] = n == Model.Name ? null : Model.Name, ["max_model_len"] = Batcher.Capacity,
            }).ToArray()),
        })));
        // The deadline runs from the first byte of the body: a client trickling it in spends the request's time too.
        app.MapPost("/v1/chat/completions", Guard(async ctx =>
        {
            using var deadline = new CancellationTokenSource(options.RequestTimeout);
            await handler.RunAsync(ctx, RequestParser.Chat(await ReadBody(ctx, deadline.Token), Model, Batcher.Capacity, maxN), chat: true, deadline.Token);
        }));
        app.MapPost("/v1/completions", Guard(async ctx =>
        {
            using var deadline = new CancellationTokenSource(options.RequestTimeout);
            await handler.RunAsync(ctx, RequestParser.Completion(await ReadBody(ctx, deadline.Token), Model, Batcher.Capacity, maxN), chat: false, deadline.Token);
        }));
        app.MapPost("/update_weights_from_disk", Guard(UpdateWeights));
        app.MapFallback(Guard(ctx => throw new ApiError(404, $"no route {ctx.Request.Method} {ctx.Request.Path}", code: "not_found")));
    }

    /// <summary>SGLang's payload: {"model_path": DIR, "weight_version": optional label}. Loading happens off the
    /// batching loop; the swap waits for the current step to end, so requests in flight go on uninterrupted.</summary>
    async Task UpdateWeights(HttpContext ctx)
    {
        var body = await ReadBody(ctx);
        string path = JsonFields.String(body, "model_path", required: true)!;
        string? label = JsonFields.String(body, "weight_version");
        if (!Directory.Exists(path) && !IO.GgufModel.IsGgufFile(path)) throw ApiError.BadRequest($"model_path {path}: folder not found", "model_path");
        // New weights would arrive without the LoRA adapters served over the old ones, and requests naming an adapter
        // would silently get the bare base: refused until adapters are reloaded with the weights.
        if (backend is ModelBackend { Model.Lora: not null })
            throw ApiError.BadRequest("this server applies LoRA adapters (--adapter/--lora); swapping its base weights is not supported", "model_path");
        IDisposable prepared;
        try { prepared = await Task.Run(() => backend.PrepareWeights(path)); }
        catch (R1SharpException e) { throw ApiError.BadRequest(e.Message, "model_path"); }
        string version;
        try { version = await Batcher.SwapWeightsAsync(prepared, label); }
        catch { prepared.Dispose(); throw; }
        await WriteJson(ctx, 200, new JsonObject { ["success"] = true, ["message"] = $"weights loaded from {path}", ["weight_version"] = version });
    }

    /// <summary>Authentication, then the route; any refusal becomes OpenAI's error object with its status.</summary>
    RequestDelegate Guard(Func<HttpContext, Task> route) => async ctx =>
    {
        try
        {
            if (options.ApiKey is { } key && !BearerMatches(ctx.Request.Headers.Authorization.ToString(), key))
                throw new ApiError(401, "incorrect or missing API key: send Authorization: Bearer <key>", code: "invalid_api_key");
            ctx.Response.Headers[WeightVersionHeader] = Batcher.WeightVersion;
            await route(ctx);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is not OperationCanceledException)
        {
            var error = e switch
            {
                ApiError a => a,
                R1SharpException r => ApiError.BadRequest(r.Message),
                BadHttpRequestException b => new ApiError(b.StatusCode, b.Message),
                _ => new ApiError(500, $"internal error: {e.Message}", "server_error"),
            };
            var json = error.ToJson();
            if (ctx.Request.Path == "/update_weights_from_disk") json["success"] = false;
            await WriteJson(ctx, error.Status, json);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Mid-stream failures cannot change the status any more; log them, the client sees the stream cut.
            Console.Error.WriteLine($"r1 serve: {ctx.Request.Path} failed after the response started: {e}");
            throw;
        }
    };

    /// <summary>"Bearer &lt;key&gt;": the scheme is case-insensitive (RFC 7235 §2.1), the key compared in constant time.</summary>
    static bool BearerMatches(string header, string key)
    {
        const string scheme = "Bearer ";
        if (header.Length <= scheme.Length || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var sent = System.Text.Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(sent, System.Text.Encoding.UTF8.GetBytes(key));
    }

    async Task<JsonObject> ReadBody(HttpContext ctx) => await ReadBody(ctx, CancellationToken.None);

    async Task<JsonObject> ReadBody(HttpContext ctx, CancellationToken deadline)
    {
        if (ctx.Request.ContentLength > options.MaxRequestBytes) throw TooLarge();
        using var both = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, deadline);
        using var reader = new StreamReader(ctx.Request.Body);
        try { return JsonFields.ParseObject(await reader.ReadToEndAsync(both.Token)); }
        catch (BadHttpRequestException e) when (e.StatusCode == 413) { throw TooLarge(); }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ctx.RequestAborted.IsCancellationRequested)
        {
            throw new ApiError(408, $"the request body did not arrive within the server's request timeout of {options.RequestTimeout.TotalSeconds:0.#} s", code: "request_timeout");
        }
    }

    ApiError TooLarge() => new(413, $"the request body is larger than this server's limit of {options.MaxRequestBytes:N0} bytes (r1 serve --max-request-bytes)",
        code: "request_too_large");

    internal static async Task WriteJson(HttpContext ctx, int status, JsonObject body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        // The loop stops first: requests still in flight end with an error event at once instead of holding the
        // host's graceful shutdown until their budgets run out.
        Batcher.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
        backend.Dispose();
    }
}
