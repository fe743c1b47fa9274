using System.Text.Json;

namespace R1Sharp.Text;

/// <summary>A slice of a string: pre-tokenization produces these without copying text.</summary>
public readonly record struct Piece(string Source, int Start, int Length)
{
    public ReadOnlySpan<char> Span => Source.AsSpan(Start, Length);
    public override string ToString() => Source.Substring(Start, Length);
}

/// <summary>
/// tokenizer.json's "pre_tokenizer" for byte-level BPE: a Sequence of Split steps (regex or literal, with Hugging
/// Face's delimiter behaviours and invert) ending in ByteLevel (optional prefix space and GPT-2 regex).
/// Unlike Microsoft.ML.Tokenizers' stock regex pre-tokenizers, text between matches is kept (behaviour
/// "Isolated") and regexes see code points, not UTF-16 units (see <see cref="CodePointRegex"/>).
/// The ByteLevel step's byte → character mapping itself is left to the BPE stage.
/// </summary>
public sealed class HfPreTokenizer
{
    // The regex GPT-2 (and Hugging Face's ByteLevel with use_regex=true) splits words with.
    const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    // One step of the sequence. ByteLevel is a step too: it may prefix a space to each piece it receives
    // (before its own regex split, as Hugging Face does) and may have no regex at all.
    sealed record SplitStep(CodePointRegex? Regex, Behavior Behavior, bool Invert, bool AddPrefixSpace = false);

    readonly List<SplitStep> _steps = [];

    [ThreadStatic] static List<(int Start, int Length)>? s_matches;

    /// <summary>Splits one normalized text segment into the pieces the BPE model encodes separately.</summary>
    public void Split(string text, List<Piece> output)
    {
        if (text.Length == 0) return;
        var current = new List<Piece> { new(text, 0, text.Length) };
        var next = new List<Piece>();
        foreach (var step in _steps)
        {
            foreach (var piece in current) Apply(step, piece, next);
            (current, next) = (next, current);
            next.Clear();
        }
        output.AddRange(current);
    }

    static void Apply(SplitStep step, Piece piece, List<Piece> output)
    {
        if (step.AddPrefixSpace && piece.Span[0] != ' ')
        {
            var prefixed = " " + piece;
            piece = new Piece(prefixed, 0, prefixed.Length);
        }
        if (step.Regex == null) { output.Add(piece); return; }
        var matches = s_matches ??= new List<(int, int)>();
        matches.Clear();
        step.Regex.FindMatches(piece.Span, matches);
        // Hugging Face first covers the piece with alternating (gap, match) spans, then merges or drops them.
        var spans = new List<(int Start, int End, bool IsMatch)>(matches.Count * 2 + 1);
        int prev = 0;
        foreach (var (start, length) in matches)
        {
            if (prev != start) spans.Add((prev, start, step.Invert));
            spans.Add((start, start + length, !step.Invert));
            prev = start + length;
        }
        if (prev != piece.Length) spans.Add((prev, piece.Length, step.Invert));

        var kept = new List<(int Start, int End)>(spans.Count);
        bool previousMatch = false;
        switch (step.Behavior)
        {
            case Behavior.Isolated:
                foreach (var s in spans) kept.Add((s.Start, s.End));
                break;
            case Behavior.Removed:
                foreach (var s in spans) if (!s.IsMatch) kept.Add((s.Start, s.End));
                break;
            case Behavior.Contiguous:
                foreach (var s in spans)
                {
                    if (s.IsMatch == previousMatch && kept.Count > 0) kept[^1] = (kept[^1].Start, s.End);
                    else kept.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case Behavior.MergedWithPrevious:
                foreach (var s in spans)
                {
                    if (s.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (kept[^1].Start, s.End);
                    else kept.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case Behavior.MergedWithNext:
                for (int i = spans.Count - 1; i >= 0; i--)
                {
                    var s = spans[i];
                    if (s.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (s.Start, kept[^1].End);
                    else kept.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                kept.Reverse();
                break;
        }
        foreach (var (start, end) in kept)
            if (end > start) output.Add(new Piece(piece.Source, piece.Start + start, end - start));
    }

    /// <summary>Builds the pre-tokenizer; only byte-level pipelines (ending in ByteLevel) are accepted.</summary>
    public static HfPreTokenizer FromJson(JsonElement? node, string file)
    {
        var p = new HfPreTokenizer();
        bool byteLevelSeen = false;
        if (node is { } e && e.ValueKind != JsonValueKind.Null) p.Add(e, file, ref byteLevelSeen);
        if (!byteLevelSeen)
            throw new R1SharpException($"{file}: pre_tokenizer has no ByteLevel step; only byte-level BPE tokenizers are supported");
        return p;
    }

    void Add(JsonElement e, string file, ref bool byteLevelSeen)
    {
        string type = TokenizerJson.GetString(e, "type", file, "pre_tokenizer");
        if (byteLevelSeen)
            throw new R1SharpException($"{file}: pre_tokenizer step \"{type}\" after ByteLevel is not supported (ByteLevel must come last)");
        switch (type)
        {
            case "Sequence":
                foreach (var child in TokenizerJson.GetArray(e, "pretokenizers", file, "pre_tokenizer")) Add(child, file, ref byteLevelSeen);
                break;
            case "Split":
                _steps.Add(new SplitStep(ParsePattern(e, file), ParseBehavior(e, file),
                    e.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True));
                break;
            case "ByteLevel":
                byteLevelSeen = true;
                bool addPrefixSpace = e.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True;
                // use_regex defaults to true in Hugging Face tokenizers.
                bool useRegex = !e.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False;
                if (useRegex || addPrefixSpace)
                    _steps.Add(new SplitStep(useRegex ? new CodePointRegex(Gpt2Pattern, file) : null, Behavior.Isolated, false, addPrefixSpace));
                break;
            default:
                throw new R1SharpException($"{file}: pre_tokenizer type \"{type}\" is not supported (supported: Sequence, Split, ByteLevel)");
        }
    }

    static CodePointRegex ParsePattern(JsonElement e, string file)
    {
        if (!e.TryGetProperty("pattern", out var pattern) || pattern.ValueKind != JsonValueKind.Object)
            throw new R1SharpException($"{file}: Split pre_tokenizer has no \"pattern\" object");
        if (pattern.TryGetProperty("Regex", out var rx) && rx.ValueKind == JsonValueKind.String)
            return new CodePointRegex(rx.GetString()!, file);
        if (pattern.TryGetProperty("String", out var lit) && lit.ValueKind == JsonValueKind.String)
            return CodePointRegex.Literal(lit.GetString()!, file);
        throw new R1SharpException($"{file}: Split pre_tokenizer pattern needs \"Regex\" or \"String\"");
    }

    static Behavior ParseBehavior(JsonElement e, string file)
    {
        string b = TokenizerJson.GetString(e, "behavior", file, "Split pre_tokenizer");
        return Enum.TryParse<Behavior>(b, out var behavior)
            ? behavior
            : throw new R1SharpException($"{file}: Split behavior \"{b}\" is unknown (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
    }
}
