using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Text;

namespace R1Sharp.Serving;

/// <summary>The model a server answers for: its id, tokenizer, chat template, end tokens and default sampling.</summary>
/// <param name="Adapters">LoRA adapters served over the base by name (r1 serve --lora NAME=DIR), each an index into
/// the model's <see cref="Models.Lora.LoraModel"/>; a request chooses one with its model field, as with vLLM.</param>
public sealed record ServedModel(string Name, HfTokenizer Tokenizer, ChatTemplate? Template, IReadOnlySet<int> EosIds, SamplingOptions Defaults,
    IReadOnlyDictionary<string, int>? Adapters = null)
{
    /// <summary>Every model id a request may name: the base, then the adapters.</summary>
    public IEnumerable<string> Names => Adapters is null ? [Name] : [Name, .. Adapters.Keys];
}

/// <summary>A validated request: prompt ids and everything the sequences and the response writer need.</summary>
/// <param name="ReturnTokenIds">vLLM's return_token_ids: the response carries prompt_token_ids and each choice's token_ids
/// (what a trainer scores), end token included when the choice stopped on one.</param>
public sealed record GenerationRequest(IReadOnlyList<int> PromptIds, SamplingOptions Options, int N, bool Stream, bool IncludeUsage, bool OpensThink,
    bool ReturnTokenIds = false)
{
    /// <summary>The LoRA adapter the request named (an index into the model's adapters); null: the served model itself.</summary>
    public int? Adapter { get; init; }
}

/// <summary>
/// Turns /v1/chat/completions and /v1/completions bodies into <see cref="GenerationRequest"/>s, rejecting bad input
/// with 400s that name the parameter. Fields OpenAI defines but this server does not use (penalties, logit_bias,
/// user, ...) are accepted and ignored, as vLLM does, so stock clients work.
/// </summary>
public static class RequestParser
{
    public const int MaxStops = 16;

    public static GenerationRequest Chat(JsonObject body, ServedModel model, int capacity, int maxN)
    {
        int? adapter = CheckModel(body, model);
        var messages = Messages(body);
        string prompt;
        bool opensThink = false;
        if (model.Template is null) prompt = messages.LastOrDefault(m => m.Role == "user")?.Content ?? throw ApiError.BadRequest("'messages' needs a user message", "messages");
        else
        {
            try { prompt = model.Template.Render(messages, addGenerationPrompt: true); }
            catch (R1SharpException e) { throw ApiError.BadRequest($"the chat template refused these messages: {e.Message}", "messages"); }
            // DeepSeek-R1's template ends the generation prompt inside <think>: the completion starts as reasoning.
            opensThink = prompt.EndsWith(ReasoningSplit.Open + "\n", StringComparison.Ordinal) || prompt.EndsWith(ReasoningSplit.Open, StringComparison.Ordinal);
        }
        var ids = model.Tokenizer.Encode(prompt);
        long? maxTokens = JsonFields.Integer(body, "max_completion_tokens", 1, int.MaxValue) ?? JsonFields.Integer(body, "max_tokens", 1, int.MaxValue);
        return Common(body, model, ids, maxTokens, capacity, maxN, opensThink) with { Adapter = adapter };
    }

    public static GenerationRequest Completion(JsonObject body, ServedModel model, int capacity, int maxN)
    {
        int? adapter = CheckModel(body, model);
        var p = body["prompt"];
        IReadOnlyList<int> ids = p switch
        {
            null => throw JsonFields.Missing("prompt"),
            JsonValue v when v.GetValueKind() == JsonValueKind.String => model.Tokenizer.Encode(v.GetValue<string>()),
            JsonArray { Count: 1 } a when a[0] is JsonValue s && s.GetValueKind() == JsonValueKind.String => model.Tokenizer.Encode(s.GetValue<string>()),
            JsonArray a when a.Count > 0 && a.All(x => x is JsonValue n && n.GetValueKind() == JsonValueKind.Number) => TokenIds(a, model),
            _ => throw JsonFields.WrongType("prompt", "a string, a list of one string, or a list of token ids", p),
        };
        long? maxTokens = JsonFields.Integer(body, "max_tokens", 1, int.MaxValue) ?? 16; // OpenAI's default for completions
        return Common(body, model, ids, maxTokens, capacity, maxN, opensThink: false) with { Adapter = adapter };
    }

    static IReadOnlyList<int> TokenIds(JsonArray a, ServedModel model) => a.Select((x, i) =>
        x!.AsValue().TryGetValue(out int id) && id >= 0 && id < model.Tokenizer.VocabSize ? id
            : throw ApiError.BadRequest($"'prompt[{i}]' is not a token id of this model (0..{model.Tokenizer.VocabSize - 1})", "prompt", "invalid_value")).ToArray();

    /// <summary>The adapter the model field names (null: the served model itself); an unknown name is a 400 naming
    /// what is served.</summary>
    static int? CheckModel(JsonObject body, ServedModel model)
    {
        string name = JsonFields.String(body, "model", required: true)!;
        if (name == model.Name) return null;
        if (model.Adapters is { } a && a.TryGetValue(name, out int index)) return index;
        throw new ApiError(400, $"the model '{name}' does not exist; this server serves {string.Join(", ", model.Names.Select(n => $"'{n}'"))}", param: "model", code: "model_not_found");
    }

    static GenerationRequest Common(JsonObject body, ServedModel model, IReadOnlyList<int> ids, long? maxTokens, int capacity, int maxN, bool opensThink)
    {
        if (ids.Count == 0) throw ApiError.BadRequest("the prompt is empty", "prompt");
        if (ids.Count >= capacity)
            throw ApiError.BadRequest($"this model's maximum context length is {capacity} tokens, but the prompt has {ids.Count} tokens", "messages", "context_length_exceeded");
        int max = (int)(maxTokens ?? capacity - ids.Count);
        if (ids.Count + max > capacity)
            throw ApiError.BadRequest($"this model's maximum context length is {capacity} tokens, but {ids.Count} prompt tokens + max_tokens {max} = {ids.Count + max}; lower max_tokens to at most {capacity - ids.Count}", "max_tokens", "context_length_exceeded");
        var d = model.Defaults;
        var options = d with
        {
            Temperature = (float)(JsonFields.Number(body, "temperature", 0, 2) ?? d.Temperature),
            TopP = (float)(JsonFields.Number(body, "top_p", 0, 1, minExclusive: true) ?? d.TopP),
            TopK = (int)(JsonFields.Integer(body, "top_k", -1, int.MaxValue) is { } k ? Math.Max(0, k) : d.TopK), // vLLM's -1 = off
            MaxTokens = max,
            Seed = JsonFields.Integer(body, "seed", long.MinValue / 4, long.MaxValue / 4),
            Stop = JsonFields.StringOrList(body, "stop", MaxStops),
        };
        int n = (int)(JsonFields.Integer(body, "n", 1, maxN) ?? 1);
        bool stream = JsonFields.Bool(body, "stream") ?? false;
        bool includeUsage = false;
        if (body["stream_options"] is { } so)
        {
            if (so is not JsonObject sob) throw JsonFields.WrongType("stream_options", "an object", so);
            includeUsage = JsonFields.Bool(sob, "include_usage") ?? false;
        }
        foreach (var name in new[] { "frequency_penalty", "presence_penalty" }) JsonFields.Number(body, name, -2, 2);
        bool returnTokenIds = JsonFields.Bool(body, "return_token_ids") ?? false;
        if (returnTokenIds && stream) throw ApiError.BadRequest("return_token_ids is supported without streaming only", "return_token_ids");
        return new GenerationRequest(ids, options, n, stream, includeUsage, opensThink, returnTokenIds);
    }

    /// <summary>Messages as the template sees them. reasoning_content is dropped and an assistant turn keeps only what
    /// follows its &lt;/think&gt;, as DeepSeek-R1's template does: earlier chains of thought never reach the prompt.</summary>
    static List<ChatMessage> Messages(JsonObject body)
    {
        var node = body["messages"] ?? throw JsonFields.Missing("messages");
        if (node is not JsonArray list) throw JsonFields.WrongType("messages", "a list of messages", node);
        if (list.Count == 0) throw ApiError.BadRequest("'messages' must not be empty", "messages", "invalid_value");
        var result = new List<ChatMessage>(list.Count);
        for (int i = 0; i < list.Count; i++)
        {
            string at = $"messages[{i}]";
            if (list[i] is not JsonObject m) throw JsonFields.WrongType(at, "an object", list[i]);
            string role = JsonFields.String(m, "role", required: true)!;
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiError.BadRequest($"'{at}.role' must be system, developer, user, assistant or tool, got '{role}'", $"{at}.role", "invalid_value");
            string content = Content(m["content"], $"{at}.content", allowNull: role == "assistant");
            if (role == "assistant")
            {
                int close = content.LastIndexOf(ReasoningSplit.Close, StringComparison.Ordinal);
                if (close >= 0) content = content[(close + ReasoningSplit.Close.Length)..].TrimStart('\n');
            }
            result.Add(new ChatMessage(role == "developer" ? "system" : role, content));
        }
        return result;
    }

    static string Content(JsonNode? node, string at, bool allowNull)
    {
        switch (node)
        {
            case null when allowNull: return "";
            case null: throw JsonFields.Missing(at);
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: return v.GetValue<string>();
            case JsonArray parts:
                var sb = new System.Text.StringBuilder();
                for (int i = 0; i < parts.Count; i++)
                {
                    if (parts[i] is not JsonObject part || JsonFields.String(part, "type") != "text")
                        throw ApiError.BadRequest($"'{at}[{i}]' must be a text part ({{\"type\": \"text\", \"text\": ...}}); this model reads text only", at, "invalid_value");
                    sb.Append(JsonFields.String(part, "text", required: true));
                }
                return sb.ToString();
            default: throw JsonFields.WrongType(at, "a string or a list of text parts", node);
        }
    }
}
