using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace R1Sharp.Text;

/// <summary>
/// tokenizer.json's "normalizer": a chain of string rewrites applied to each plain-text segment (after
/// non-normalized added tokens are cut out) before pre-tokenization. Qwen uses NFC; DeepSeek-V3 an empty Sequence.
/// </summary>
public sealed class HfNormalizer
{
    readonly List<Func<string, string>> _steps = [];

    public static readonly HfNormalizer None = new();

    public string Apply(string text)
    {
        foreach (var step in _steps) text = step(text);
        return text;
    }

    /// <summary>Builds the chain from the JSON node (null or JSON null means no normalization).</summary>
    public static HfNormalizer FromJson(JsonElement? node, string file)
    {
        var n = new HfNormalizer();
        if (node is { } e && e.ValueKind != JsonValueKind.Null) n.Add(e, file);
        return n;
    }

    void Add(JsonElement e, string file)
    {
        string type = TokenizerJson.GetString(e, "type", file, "normalizer");
        switch (type)
        {
            case "Sequence":
                foreach (var child in TokenizerJson.GetArray(e, "normalizers", file, "normalizer")) Add(child, file);
                break;
            case "NFC": _steps.Add(s => Normalize(s, NormalizationForm.FormC)); break;
            case "NFD": _steps.Add(s => Normalize(s, NormalizationForm.FormD)); break;
            case "NFKC": _steps.Add(s => Normalize(s, NormalizationForm.FormKC)); break;
            case "NFKD": _steps.Add(s => Normalize(s, NormalizationForm.FormKD)); break;
            case "Lowercase": _steps.Add(s => s.ToLowerInvariant()); break;
            case "Prepend":
                string prefix = TokenizerJson.GetString(e, "prepend", file, "Prepend normalizer");
                _steps.Add(s => s.Length == 0 ? s : prefix + s);
                break;
            case "Replace":
                string content = TokenizerJson.GetString(e, "content", file, "Replace normalizer");
                var pattern = e.GetProperty("pattern");
                if (pattern.TryGetProperty("String", out var lit))
                {
                    string from = lit.GetString() ?? "";
                    _steps.Add(s => from.Length == 0 ? s : s.Replace(from, content, StringComparison.Ordinal));
                }
                else if (pattern.TryGetProperty("Regex", out var rx))
                {
                    var regex = new Regex(rx.GetString() ?? "", RegexOptions.CultureInvariant);
                    _steps.Add(s => regex.Replace(s, content));
                }
                else throw new R1SharpException($"{file}: Replace normalizer needs a pattern with \"String\" or \"Regex\"");
                break;
            case "Strip":
                bool left = e.TryGetProperty("strip_left", out var l) && l.GetBoolean();
                bool right = e.TryGetProperty("strip_right", out var r) && r.GetBoolean();
                _steps.Add(s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s);
                break;
            default:
                throw new R1SharpException($"{file}: normalizer type \"{type}\" is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip)");
        }
    }

    // IsNormalized is a cheap scan; most text is already NFC and then costs no copy.
    static string Normalize(string s, NormalizationForm form)
    {
        try { return s.IsNormalized(form) ? s : s.Normalize(form); }
        catch (ArgumentException)
        {
            // .NET refuses lone surrogates; the Rust tokenizer only ever sees them as U+FFFD (lossy UTF-8).
            var fixedText = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s));
            return fixedText.Normalize(form);
        }
    }
}
