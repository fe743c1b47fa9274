using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using R1Sharp.Generation;

namespace R1Sharp.Serving;

/// <summary>What a sequence reports to the request that owns it: released text (stop strings already cut), the
/// weight version of the step that produced it, and, on the last event, why it ended.</summary>
public readonly record struct SequenceEvent(int Choice, string Text, string WeightVersion, string? FinishReason, string? Error = null);

/// <summary>
/// Runs one /v1/chat/completions or /v1/completions request: queues its n sequences in the shared batch, then either
/// streams server-sent events as text is released or answers once every choice has finished. Whatever way the request
/// ends (done, client gone, deadline passed, error), its unfinished sequences are cancelled so their slots go back to
/// the batch.
/// </summary>
public sealed class CompletionHandler(ServedModel model, ContinuousBatcher batcher, TimeSpan requestTimeout)
{
    /// <param name="deadline">fires when the request has had its time (ServeOptions.RequestTimeout): its sequences are
    /// cancelled and the client gets 504, or an error event and [DONE] when the stream had started</param>
    public async Task RunAsync(HttpContext ctx, GenerationRequest req, bool chat, CancellationToken deadline = default)
    {
        var channel = Channel.CreateUnbounded<SequenceEvent>(); // multi-reader flavour: its Count tells when a burst ends
        var seqs = Enumerable.Range(0, req.N).Select(i => new Sequence(req.PromptIds, req.Options, model.EosIds, index: i, model.Tokenizer)
        {
            Adapter = req.Adapter,
            // Events fire on the batcher's thread between steps, so the weight version read here is the one that
            // produced the token.
            OnEvent = (s, text, finish) => channel.Writer.TryWrite(new SequenceEvent(s.Index, text, batcher.WeightVersion, finish, s.Error)),
        }).ToArray();
        var choices = seqs.Select(_ => new ChoiceText(chat, req.OpensThink)).ToArray();
        batcher.Submit(seqs);
        void CancelAll()
        {
            foreach (var s in seqs) if (!s.Finished) s.Cancel();
            batcher.Nudge();
        }
        using var onAbort = ctx.RequestAborted.Register(CancelAll);
        using var onDeadline = deadline.Register(CancelAll);
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, deadline);
        var rsp = new ResponseShape(chat, model.Name);
        try
        {
            if (req.Stream) await StreamAsync(ctx, req, channel.Reader, seqs, choices, rsp, ended.Token);
            else await WholeAsync(ctx, req, channel.Reader, seqs, choices, rsp, ended.Token);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { } // the client left
        catch (IOException) when (ctx.RequestAborted.IsCancellationRequested) { }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            CancelAll();
            string message = $"the request did not finish within the server's request timeout of {requestTimeout.TotalSeconds:0.#} s; its sequences were cancelled";
            if (!ctx.Response.HasStarted) throw new ApiError(504, message, "server_error", code: "request_timeout");
            await Send(ctx, ApiError.Body(message, "server_error", null, "request_timeout"), ctx.RequestAborted);
            await ctx.Response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), ctx.RequestAborted);
        }
        finally { CancelAll(); }
    }

    async Task StreamAsync(HttpContext ctx, GenerationRequest req, ChannelReader<SequenceEvent> events, Sequence[] seqs, ChoiceText[] choices, ResponseShape rsp,
        CancellationToken cancel)
    {
        var r = ctx.Response;
        r.ContentType = "text/event-stream";
        r.Headers.CacheControl = "no-cache";
        r.Headers["X-Accel-Buffering"] = "no";
        string version = batcher.WeightVersion;
        if (rsp.Chat)
            for (int i = 0; i < seqs.Length; i++)
                await Send(ctx, rsp.Chunk(i, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null, version), cancel);
        await r.Body.FlushAsync(cancel);
        int open = seqs.Length;
        while (open > 0)
        {
            var e = await events.ReadAsync(cancel);
            var c = choices[e.Choice];
            c.WeightVersion = e.WeightVersion;
            bool last = e.FinishReason != null;
            foreach (var (isReasoning, text) in c.Push(e.Text, last))
                await Send(ctx, rsp.Delta(e.Choice, isReasoning, text, e.WeightVersion), cancel);
            if (e.Error != null)
            {
                // Headers are gone, so a failure mid-stream travels as an error event, as OpenAI's API sends it.
                await Send(ctx, ApiError.Body(e.Error, "server_error", null, null), cancel);
                break;
            }
            if (last)
            {
                open--;
                await Send(ctx, rsp.Chunk(e.Choice, rsp.Chat ? new JsonObject() : null, e.FinishReason, e.WeightVersion), cancel);
            }
            if (events.Count == 0) await r.Body.FlushAsync(cancel); // one flush per burst of events
        }
        if (open == 0 && req.IncludeUsage)
        {
            var usage = rsp.WithCommon(new JsonObject { ["choices"] = new JsonArray(), ["usage"] = Usage(req, seqs, rsp.Chat) }, batcher.WeightVersion, chunk: true);
            await Send(ctx, usage, cancel);
        }
        await r.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), cancel);
        await r.Body.FlushAsync(cancel);
    }

    async Task WholeAsync(HttpContext ctx, GenerationRequest req, ChannelReader<SequenceEvent> events, Sequence[] seqs, ChoiceText[] choices, ResponseShape rsp,
        CancellationToken cancel)
    {
        int open = seqs.Length;
        // The version of the weights that produced the last token (after a reload mid-request, the newer one).
        string version = batcher.WeightVersion;
        while (open > 0)
        {
            var e = await events.ReadAsync(cancel);
            var c = choices[e.Choice];
            version = c.WeightVersion = e.WeightVersion;
            c.Push(e.Text, e.FinishReason != null);
            if (e.Error != null) throw new ApiError(500, e.Error, "server_error");
            if (e.FinishReason != null) { c.FinishReason = e.FinishReason; open--; }
        }
        var list = new JsonArray();
        for (int i = 0; i < choices.Length; i++)
        {
            var c = choices[i];
            JsonObject choice = rsp.Chat
                ? new() { ["index"] = i, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = c.Content, ["reasoning_content"] = c.Reasoning }, ["logprobs"] = null, ["finish_reason"] = c.FinishReason }
                : new() { ["index"] = i, ["text"] = c.Content, ["logprobs"] = null, ["finish_reason"] = c.FinishReason };
            if (req.ReturnTokenIds) choice["token_ids"] = new JsonArray(seqs[i].Tokens.Select(t => (JsonNode)t).ToArray());
            list.Add(choice);
        }
        var body = rsp.WithCommon(new JsonObject { ["choices"] = list, ["usage"] = Usage(req, seqs, rsp.Chat) }, version);
        if (req.ReturnTokenIds) body["prompt_token_ids"] = new JsonArray(req.PromptIds.Select(t => (JsonNode)t).ToArray());
        ctx.Response.Headers[OpenAiServer.WeightVersionHeader] = version;
        await OpenAiServer.WriteJson(ctx, 200, body);
    }

    static JsonObject Usage(GenerationRequest req, Sequence[] seqs, bool chat)
    {
        int completion = seqs.Sum(s => s.Tokens.Count);
        int reasoning = chat ? seqs.Sum(s => ReasoningTokens.Count(s.Text, s.TextEnds, req.OpensThink)) : 0;
        return new JsonObject
        {
            ["prompt_tokens"] = req.PromptIds.Count,
            ["completion_tokens"] = completion,
            ["total_tokens"] = req.PromptIds.Count + completion,
            ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = reasoning },
        };
    }

    static Task Send(HttpContext ctx, JsonObject chunk, CancellationToken cancel) =>
        ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes("data: " + chunk.ToJsonString() + "\n\n"), cancel).AsTask();
}

/// <summary>The fields every response and chunk of one request shares (id, object, created, model, weight_version).</summary>
public sealed class ResponseShape(bool chat, string model)
{
    public bool Chat { get; } = chat;
    readonly string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
    readonly long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public JsonObject WithCommon(JsonObject body, string weightVersion, bool chunk = false)
    {
        var o = new JsonObject
        {
            ["id"] = id,
            ["object"] = Chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion",
            ["created"] = created,
            ["model"] = model,
            ["weight_version"] = weightVersion,
        };
        foreach (var (k, v) in body.ToArray()) { body.Remove(k); o[k] = v; }
        return o;
    }

    public JsonObject Delta(int index, bool isReasoning, string text, string version) => Chat
        ? Chunk(index, new JsonObject { [isReasoning ? "reasoning_content" : "content"] = text }, null, version)
        : Chunk(index, null, null, version, text);

    /// <summary>A chunk for one choice: a chat delta, or completion text.</summary>
    public JsonObject Chunk(int index, JsonObject? delta, string? finish, string version, string text = "")
    {
        var choice = new JsonObject { ["index"] = index };
        if (Chat) choice["delta"] = delta ?? new JsonObject();
        else choice["text"] = text;
        choice["logprobs"] = null;
        choice["finish_reason"] = finish;
        return WithCommon(new JsonObject { ["choices"] = new JsonArray(choice) }, version, chunk: true);
    }
}
