using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Serving;

/// <summary>
/// Typed reads of request fields with OpenAI-style 400s naming the parameter: a wrong type or range is the client's
/// error and must never surface as an exception the host turns into a 500. JSON null counts as absent, as in OpenAI's API.
/// </summary>
public static class JsonFields
{
    public static JsonObject ParseObject(string body)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(body); }
        catch (JsonException e) { throw ApiError.BadRequest($"the request body is not valid JSON: {e.Message}", code: "invalid_json"); }
        var o = node as JsonObject ?? throw ApiError.BadRequest("the request body must be a JSON object", code: "invalid_json");
        CheckText(o);
        return o;
    }

    /// <summary>JSON may escape a lone UTF-16 surrogate ("a\ud800b"), which is no Unicode text: System.Text.Json parses
    /// it lazily and throws only when the string is read, deep inside a handler. Every string and key is read once
    /// here, so such a body is a 400 naming the field, not a 500.</summary>
    static void CheckText(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                List<KeyValuePair<string, JsonNode?>> members;
                try { members = [.. o]; }
                catch (InvalidOperationException) { throw NotUnicode(o.GetPath(), "a key"); }
                foreach (var (_, v) in members) CheckText(v);
                break;
            case JsonArray a:
                foreach (var v in a) CheckText(v);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                try { v.GetValue<string>(); }
                catch (InvalidOperationException) { throw NotUnicode(v.GetPath(), "the string"); }
                break;
        }
    }

    static ApiError NotUnicode(string path, string what)
    {
        string name = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;
        return ApiError.BadRequest($"'{name}': {what} is not valid Unicode text (a lone UTF-16 surrogate such as \\ud800)", name, "invalid_unicode");
    }

    public static bool Has(JsonObject o, string name) => o[name] is not null;

    public static string? String(JsonObject o, string name, bool required = false)
    {
        var n = o[name];
        if (n is null) return required ? throw Missing(name) : null;
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw WrongType(name, "a string", n);
    }

    public static bool? Bool(JsonObject o, string name)
    {
        var n = o[name];
        if (n is null) return null;
        return n.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, "a boolean", n),
        };
    }

    public static double? Number(JsonObject o, string name, double min, double max, bool minExclusive = false)
    {
        var n = o[name];
        if (n is null) return null;
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) throw WrongType(name, "a number", n);
        double x = v.GetValue<double>();
        if (x < min || x > max || (minExclusive && x == min))
            throw ApiError.BadRequest($"'{name}' must be {(minExclusive ? ">" : "≥")} {min} and ≤ {max}, got {x}", name, "invalid_value");
        return x;
    }

    public static long? Integer(JsonObject o, string name, long min, long max)
    {
        var n = o[name];
        if (n is null) return null;
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) throw WrongType(name, "an integer", n);
        if (!v.TryGetValue(out long x))
        {
            double d = v.GetValue<double>();
            if (d != Math.Floor(d) || Math.Abs(d) > 9e15) throw WrongType(name, "an integer", n);
            x = (long)d;
        }
        if (x < min || x > max) throw ApiError.BadRequest($"'{name}' must be between {min} and {max}, got {x}", name, "invalid_value");
        return x;
    }

    /// <summary>A string or a list of strings (OpenAI's `stop`).</summary>
    public static IReadOnlyList<string> StringOrList(JsonObject o, string name, int maxItems)
    {
        var n = o[name];
        if (n is null) return [];
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.String) return [v.GetValue<string>()];
        if (n is not JsonArray a) throw WrongType(name, "a string or a list of strings", n);
        if (a.Count > maxItems) throw ApiError.BadRequest($"'{name}' may hold at most {maxItems} items, got {a.Count}", name, "invalid_value");
        return a.Select((x, i) => x is JsonValue s && s.GetValueKind() == JsonValueKind.String ? s.GetValue<string>()
            : throw WrongType($"{name}[{i}]", "a string", x)).ToArray();
    }

    public static ApiError Missing(string name) => ApiError.BadRequest($"'{name}' is required", name, "missing_required_parameter");

    public static ApiError WrongType(string name, string expected, JsonNode? found) =>
        ApiError.BadRequest($"'{name}' must be {expected}, got {Describe(found)}", name, "invalid_type");

    static string Describe(JsonNode? n) => n is null ? "null" : n.GetValueKind() switch
    {
        JsonValueKind.String => $"the string {n.ToJsonString()}",
        JsonValueKind.Number => $"the number {n.ToJsonString()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {n.ToJsonString()}",
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        _ => n.ToJsonString(),
    };
}
