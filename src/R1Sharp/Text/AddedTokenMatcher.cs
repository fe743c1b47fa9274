using System.Buffers;
using System.Globalization;

namespace R1Sharp.Text;

/// <summary>An entry of tokenizer.json's "added_tokens": matched in raw text before the model sees it.</summary>
public sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

/// <summary>
/// Finds added tokens in text the way Hugging Face's AddedVocabulary does: leftmost-longest matching
/// (Aho-Corasick semantics), then the per-token single_word / lstrip / rstrip rules, splitting the text into
/// plain segments and token segments.
/// </summary>
public sealed class AddedTokenMatcher
{
    sealed class Node
    {
        public Dictionary<char, Node>? Next;
        public AddedToken? Token; // a token ends here
    }

    readonly Node _root = new();
    readonly SearchValues<char> _firstChars; // lets the scan skip to the next possible start in vectorized steps
    public bool IsEmpty { get; }

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        var first = new HashSet<char>();
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            var node = _root;
            foreach (char c in t.Content)
            {
                node.Next ??= new Dictionary<char, Node>();
                if (!node.Next.TryGetValue(c, out var child)) node.Next[c] = child = new Node();
                node = child;
            }
            node.Token ??= t; // duplicates: the first one listed wins
            first.Add(t.Content[0]);
        }
        IsEmpty = first.Count == 0;
        _firstChars = SearchValues.Create(first.ToArray());
    }

    /// <summary>
    /// Splits <paramref name="text"/> into segments; Token is null for plain text. Segments cover the text in order,
    /// except for whitespace that an lstrip/rstrip token absorbs (it belongs to the token's segment).
    /// </summary>
    public List<(int Start, int End, AddedToken? Token)> Split(string text)
    {
        var result = new List<(int, int, AddedToken?)>();
        int emitted = 0; // end of what has been emitted so far
        int pos = 0;
        while (!IsEmpty && pos < text.Length)
        {
            int rel = text.AsSpan(pos).IndexOfAny(_firstChars);
            if (rel < 0) break;
            int start = pos + rel;
            var (token, length) = LongestAt(text, start);
            if (token == null) { pos = start + 1; continue; }
            int stop = start + length;
            pos = stop; // the scan resumes after the raw match, as Aho-Corasick's iterator does
            if (token.SingleWord && (EndsWithWordChar(text, start) || StartsWithWordChar(text, stop))) continue;
            if (token.LStrip)
            {
                int s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                start = Math.Max(s, emitted); // spaces already claimed by an earlier token stay there
            }
            if (token.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (start < emitted) continue; // overlaps whitespace an rstrip token took
            if (emitted < start) result.Add((emitted, start, null));
            result.Add((start, stop, token));
            emitted = stop;
            pos = Math.Max(pos, stop);
        }
        if (emitted < text.Length) result.Add((emitted, text.Length, null));
        return result;
    }

    (AddedToken? Token, int Length) LongestAt(string text, int start)
    {
        AddedToken? best = null;
        int bestLength = 0;
        var node = _root;
        for (int i = start; i < text.Length && node.Next != null && node.Next.TryGetValue(text[i], out node); i++)
            if (node.Token != null) { best = node.Token; bestLength = i - start + 1; }
        return (best, bestLength);
    }

    // Hugging Face tests single_word boundaries with the regexes \w$ and ^\w.
    static bool EndsWithWordChar(string text, int index)
    {
        if (index == 0) return false;
        int i = index - 1;
        if (char.IsLowSurrogate(text[i]) && i > 0 && char.IsHighSurrogate(text[i - 1])) i--;
        return IsWordChar(CodePointAt(text, i));
    }

    static bool StartsWithWordChar(string text, int index) =>
        index < text.Length && IsWordChar(CodePointAt(text, index));

    static int CodePointAt(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? char.ConvertToUtf32(s[i], s[i + 1]) : s[i];

    static bool IsWordChar(int cp)
    {
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat <= UnicodeCategory.OtherNumber /* letters, marks, numbers */ || cat == UnicodeCategory.ConnectorPunctuation;
    }
}
