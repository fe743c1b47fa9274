using System.Text.Json;
using R1Sharp.Text.Jinja;

namespace R1Sharp.Text;

/// <summary>One chat turn. <see cref="ReasoningContent"/> is the text of a &lt;think&gt; block kept apart from the answer, as
/// DeepSeek's API and Qwen3's template call it; it reaches the template as message.reasoning_content only when set.</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public string? ReasoningContent { get; init; }
}

/// <summary>
/// A Hugging Face chat template (the Jinja `chat_template` of tokenizer_config.json), rendered byte for byte as
/// transformers' apply_chat_template(tokenize=False) renders it.
/// </summary>
public sealed class ChatTemplate
{
    readonly JinjaTemplate _template;
    readonly string? _bos, _eos;
    readonly Lazy<bool> _opensThink;

    public ChatTemplate(string source, string? bosToken = null, string? eosToken = null)
    {
        Source = source ?? throw new ArgumentNullException(nameof(source));
        _template = new JinjaTemplate(source);
        _bos = bosToken;
        _eos = eosToken;
        _opensThink = new Lazy<bool>(ProbeOpensThinkBlock);
    }

    public string Source { get; }

    /// <summary>True when a generation prompt ends with "&lt;think&gt;\n" (DeepSeek-R1's convention): the completion then
    /// starts inside the reasoning and the caller must prepend "&lt;think&gt;\n" to reconstruct the full reply.</summary>
    public bool OpensThinkBlock => _opensThink.Value;

    /// <summary>Reads `chat_template` (a string, or a list of {name, template} from which "default" is taken; or, when
    /// absent, a chat_template.jinja beside the file) and the bos/eos tokens (strings or {"content": ...} objects)
    /// from a tokenizer_config.json.</summary>
    public static ChatTemplate FromTokenizerConfig(string tokenizerConfigPath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(tokenizerConfigPath)); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            throw new R1SharpException($"{tokenizerConfigPath}: cannot read tokenizer config: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new R1SharpException($"{tokenizerConfigPath}: expected a JSON object");
            if (!root.TryGetProperty("chat_template", out var ct) || ct.ValueKind == JsonValueKind.Null)
            {
                // Since transformers 4.43 save_pretrained may write the template to chat_template.jinja beside the config.
                var sidecar = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tokenizerConfigPath))!, "chat_template.jinja");
                if (!File.Exists(sidecar))
                    throw new R1SharpException($"{tokenizerConfigPath}: no \"chat_template\" in this tokenizer config and no chat_template.jinja beside it");
                return Build(File.ReadAllText(sidecar), root, sidecar);
            }
            string source = ct.ValueKind switch
            {
                JsonValueKind.String => ct.GetString()!,
                JsonValueKind.Array => PickDefault(ct, tokenizerConfigPath),
                _ => throw new R1SharpException($"{tokenizerConfigPath}: \"chat_template\" must be a string or a list of {{name, template}}, found {ct.ValueKind}"),
            };
            return Build(source, root, tokenizerConfigPath);
        }
    }

    static ChatTemplate Build(string source, JsonElement config, string where)
    {
        try { return new ChatTemplate(source, TokenText(config, "bos_token"), TokenText(config, "eos_token")); }
        catch (R1SharpException e) { throw new R1SharpException($"{where}: {e.Message}", e); }
    }

    static string PickDefault(JsonElement list, string path)
    {
        var names = new List<string>();
        foreach (var item in list.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String) continue;
            names.Add(n.GetString()!);
            if (n.GetString() == "default" && item.TryGetProperty("template", out var t) && t.ValueKind == JsonValueKind.String)
                return t.GetString()!;
        }
        throw new R1SharpException($"{path}: \"chat_template\" is a list without a \"default\" entry (found: {string.Join(", ", names)})");
    }

    static string? TokenText(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var t)) return null;
        return t.ValueKind switch
        {
            JsonValueKind.String => t.GetString(),
            JsonValueKind.Object when t.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    /// <summary>Renders the conversation. Like transformers, passes messages, tools=None, documents=None,
    /// add_generation_prompt and the bos/eos tokens; <paramref name="extraContext"/> adds or overrides variables
    /// (tools, enable_thinking, date_string, ...).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyDictionary<string, object?>? extraContext = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = new List<object?>(messages.Count);
        foreach (var m in messages)
        {
            var d = new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content };
            if (m.ReasoningContent != null) d["reasoning_content"] = m.ReasoningContent;
            list.Add(d);
        }
        var vars = new Dictionary<string, object?>
        {
            ["messages"] = list,
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (_bos != null) vars["bos_token"] = _bos;
        if (_eos != null) vars["eos_token"] = _eos;
        if (extraContext != null) foreach (var (k, v) in extraContext) vars[k] = v;
        return _template.Render(vars);
    }

    bool ProbeOpensThinkBlock()
    {
        try { return Render([new ChatMessage("user", "x")], addGenerationPrompt: true).EndsWith("<think>\n", StringComparison.Ordinal); }
        catch (R1SharpException) { return false; }
    }
}
