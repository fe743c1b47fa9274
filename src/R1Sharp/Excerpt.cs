using System.Text;

namespace R1Sharp;

/// <summary>
/// Quotes untrusted text or bytes inside an error message: at most a short excerpt, with control characters, lone
/// surrogates and invalid UTF-8 escaped, so a corrupt file or a garbage HTTP body can never turn a one-line error into
/// megabytes of raw bytes (NULs, terminal escape codes) on the user's terminal.
/// </summary>
public static class Excerpt
{
    public const int DefaultLength = 80;

    /// <summary>"…" quoted and escaped, cut after <paramref name="max"/> characters with the full length said.</summary>
    public static string Quote(string text, int max = DefaultLength)
    {
        var sb = new StringBuilder("\"");
        int i = 0;
        for (int shown = 0; i < text.Length && shown < max; i++, shown++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) sb.Append(c).Append(text[++i]);
            else Append(sb, c);
        }
        sb.Append('"');
        if (i < text.Length) sb.Append($"… ({text.Length:N0} characters)");
        return sb.ToString();
    }

    /// <summary>Bytes read as UTF-8 where they are valid and \xNN where they are not, quoted and cut like text.</summary>
    public static string Quote(ReadOnlySpan<byte> bytes, int max = DefaultLength)
    {
        var sb = new StringBuilder("\"");
        int i = 0;
        for (int shown = 0; i < bytes.Length && shown < max; shown++)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out var rune, out int used) == System.Buffers.OperationStatus.Done)
            {
                if (rune.IsBmp) Append(sb, (char)rune.Value); else sb.Append(rune.ToString());
            }
            else
            {
                used = Math.Max(1, used);
                for (int k = 0; k < used; k++) sb.Append($"\\x{bytes[i + k]:x2}");
            }
            i += used;
        }
        sb.Append('"');
        if (i < bytes.Length) sb.Append($"… ({bytes.Length:N0} bytes)");
        return sb.ToString();
    }

    /// <summary>A JSON value from a file as compact JSON on one line (control characters escaped, as JSON escapes
    /// them), cut after <paramref name="max"/> characters: "hot" stays "hot", null stays null.</summary>
    public static string Json(System.Text.Json.Nodes.JsonNode? node, int max = 60)
    {
        string s = node?.ToJsonString() ?? "null";
        return s.Length <= max ? s : s[..max] + "…";
    }

    static void Append(StringBuilder sb, char c)
    {
        switch (c)
        {
            case '"': sb.Append("\\\""); break;
            case '\\': sb.Append("\\\\"); break;
            case '\n': sb.Append("\\n"); break;
            case '\r': sb.Append("\\r"); break;
            case '\t': sb.Append("\\t"); break;
            default:
                if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\uFEFF') sb.Append($"\\u{(int)c:x4}");
                else sb.Append(c);
                break;
        }
    }
}
