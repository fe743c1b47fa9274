using System.Text.Json.Nodes;
using R1Sharp.Text;

namespace R1Sharp.Training.Sft;

/// <summary>
/// One training row, in one of the three shapes the field publishes (TRL's dataset formats):
/// a conversation (<c>messages</c>; or <c>prompt</c>/<c>completion</c> as message lists, TRL's conversational
/// prompt-completion, whose trained turns start at <see cref="FirstTrained"/>), a prompt/completion pair of strings,
/// or plain <c>text</c>. <see cref="Where"/> names the file and line (or row) for error messages.
/// </summary>
public sealed record SftExample(string Where)
{
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary>Index of the first message whose assistant turns are trained (0 for `messages`).</summary>
    public int FirstTrained { get; init; }
    public string? Prompt { get; init; }
    public string? Completion { get; init; }
    public string? Text { get; init; }

    /// <summary>Reads one row object; a row of none of the shapes, or a field of the wrong type, is an error naming
    /// <paramref name="where"/>.</summary>
    public static SftExample FromJson(JsonObject row, string where)
    {
        if (row.TryGetPropertyValue("messages", out var messages) && messages is not null)
            return new SftExample(where) { Messages = Conversation(messages, "messages", where) };
        if (row.TryGetPropertyValue("prompt", out var prompt) && prompt is not null
            && row.TryGetPropertyValue("completion", out var completion) && completion is not null)
        {
            if (prompt is JsonArray && completion is JsonArray)
            {
                var p = Conversation(prompt, "prompt", where);
                var c = Conversation(completion, "completion", where);
                if (!c.Any(m => m.Role == "assistant")) throw new R1SharpException($"{where}: \"completion\" holds no assistant message");
                return new SftExample(where) { Messages = [.. p, .. c], FirstTrained = p.Count };
            }
            return new SftExample(where) { Prompt = Str(prompt, "prompt", where), Completion = Str(completion, "completion", where) };
        }
        if (row.TryGetPropertyValue("text", out var text) && text is not null)
            return new SftExample(where) { Text = Str(text, "text", where) };
        var keys = string.Join(", ", row.Select(kv => kv.Key));
        throw new R1SharpException($"{where}: expected a \"messages\" list, \"prompt\" and \"completion\", or \"text\"; found the fields {(keys.Length == 0 ? "(none)" : keys)}");
    }

    static List<ChatMessage> Conversation(JsonNode node, string field, string where)
    {
        if (node is not JsonArray list) throw new R1SharpException($"{where}: \"{field}\" must be a list of messages, found {Kind(node)}");
        if (list.Count == 0) throw new R1SharpException($"{where}: \"{field}\" is an empty list");
        var messages = new List<ChatMessage>(list.Count);
        for (int i = 0; i < list.Count; i++)
        {
            string at = $"{field}[{i}]";
            if (list[i] is not JsonObject m) throw new R1SharpException($"{where}: {at} must be an object with \"role\" and \"content\", found {Kind(list[i])}");
            string role = m["role"] is { } r ? Str(r, at + ".role", where) : throw new R1SharpException($"{where}: {at} has no \"role\"");
            string content = m["content"] is { } c ? Str(c, at + ".content", where) : throw new R1SharpException($"{where}: {at} has no \"content\"");
            string? reasoning = m["reasoning_content"] is { } rc ? Str(rc, at + ".reasoning_content", where) : null;
            messages.Add(new ChatMessage(role, content) { ReasoningContent = reasoning });
        }
        return messages;
    }

    static string Str(JsonNode node, string field, string where) =>
        node is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw new R1SharpException($"{where}: \"{field}\" must be a string, found {Kind(node)}");

    static string Kind(JsonNode? n) => n switch
    {
        null => "null",
        JsonArray => "a list",
        JsonObject => "an object",
        _ => n.GetValueKind().ToString().ToLowerInvariant(),
    };
}
