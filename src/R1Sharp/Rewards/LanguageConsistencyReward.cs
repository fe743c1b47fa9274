using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using R1Sharp.Text;

namespace R1Sharp.Rewards;

/// <summary>
/// DeepSeek-R1's language-consistency reward (§2.3.2): "the proportion of target language words in the CoT", added to
/// the accuracy reward to stop the chain of thought from mixing languages.
/// </summary>
/// <remarks>
/// The paper does not publish its word classifier; this one decides a word's language by its script, which is what
/// mixing looks like in R1-Zero's traces (Chinese inside English reasoning and the reverse):
/// <list type="bullet">
/// <item>The CoT is the text inside the first &lt;think&gt;…&lt;/think&gt; (everything before &lt;/think&gt; when the
/// prompt opened the block; the whole completion when there is no think block).</item>
/// <item>Mathematics is not language: $…$, \(…\), \[…\] spans and LaTeX commands (\frac) are removed first.</item>
/// <item>A word is a maximal run of letters of one script (Latin, Cyrillic, Greek, Arabic, Hebrew, Hangul, …); every
/// Han, Hiragana or Katakana character is a word of its own (those scripts write no spaces). Digits and punctuation
/// are not words.</item>
/// <item>score = (words in the target language's scripts) / (all words); 1 when the CoT has no words.</item>
/// </list>
/// Languages sharing a script (English and French) are not told apart.
/// </remarks>
public static partial class LanguageConsistencyReward
{
    static readonly Dictionary<string, string[]> Scripts = new()
    {
        ["en"] = ["Latin"], ["fr"] = ["Latin"], ["de"] = ["Latin"], ["es"] = ["Latin"], ["it"] = ["Latin"], ["pt"] = ["Latin"],
        ["vi"] = ["Latin"], ["id"] = ["Latin"], ["tr"] = ["Latin"], ["pl"] = ["Latin"], ["nl"] = ["Latin"],
        ["zh"] = ["Han"], ["ja"] = ["Han", "Hiragana", "Katakana"], ["ko"] = ["Hangul", "Han"],
        ["ru"] = ["Cyrillic"], ["uk"] = ["Cyrillic"], ["el"] = ["Greek"], ["ar"] = ["Arabic"], ["fa"] = ["Arabic"],
        ["he"] = ["Hebrew"], ["hi"] = ["Devanagari"], ["th"] = ["Thai"],
    };

    public static IReadOnlyCollection<string> Languages => Scripts.Keys;

    public static RewardFunction Create(string language, double weight = 1.0)
    {
        if (!Scripts.ContainsKey(language))
            throw new R1SharpException($"language \"{language}\" is unknown for language_consistency (known: {string.Join(", ", Scripts.Keys)})");
        return new RewardFunction("language_consistency", (_, completion, _) => Score(completion, language), weight);
    }

    /// <summary>The share of the CoT's words written in <paramref name="language"/>'s scripts.</summary>
    public static double Score(string completion, string language)
    {
        var target = Scripts.TryGetValue(language, out var s) ? s : throw new R1SharpException($"language \"{language}\" is unknown");
        var (inTarget, all) = CountWords(ChainOfThought(completion), target);
        return all == 0 ? 1.0 : (double)inTarget / all;
    }

    public static string ChainOfThought(string completion)
    {
        int close = completion.IndexOf(ReasoningSplit.Close, StringComparison.Ordinal);
        if (close < 0) return completion;
        int open = completion.IndexOf(ReasoningSplit.Open, StringComparison.Ordinal);
        int start = open >= 0 && open < close ? open + ReasoningSplit.Open.Length : 0;
        return completion[start..close];
    }

    /// <summary>Words in the target scripts, and all words, of a text (mathematics removed first).</summary>
    public static (int InTarget, int All) CountWords(string text, IReadOnlyCollection<string> targetScripts)
    {
        text = Math().Replace(text, " ");
        int inTarget = 0, all = 0;
        string? current = null; // script of the word being read
        void End() { if (current != null) { all++; if (targetScripts.Contains(current)) inTarget++; current = null; } }
        foreach (var rune in text.EnumerateRunes())
        {
            string? script = ScriptOf(rune);
            if (script is "Han" or "Hiragana" or "Katakana") { End(); all++; if (targetScripts.Contains(script)) inTarget++; continue; }
            if (script != current) End();
            current = script;
        }
        End();
        return (inTarget, all);
    }

    /// <summary>The script of a letter (null for anything that is not a letter).</summary>
    static string? ScriptOf(Rune r)
    {
        if (!Rune.IsLetter(r)) return null;
        int c = r.Value;
        return c switch
        {
            < 0x0250 => "Latin",                       // Basic Latin … Latin Extended-B
            >= 0x1E00 and < 0x1F00 => "Latin",         // Latin Extended Additional (Vietnamese)
            >= 0x0370 and < 0x0400 or >= 0x1F00 and < 0x2000 => "Greek",
            >= 0x0400 and < 0x0530 => "Cyrillic",
            >= 0x0590 and < 0x0600 => "Hebrew",
            >= 0x0600 and < 0x0780 or >= 0xFB50 and < 0xFF00 => "Arabic",
            >= 0x0900 and < 0x0980 => "Devanagari",
            >= 0x0E00 and < 0x0E80 => "Thai",
            >= 0x1100 and < 0x1200 or >= 0x3130 and < 0x3190 or >= 0xAC00 and < 0xD7B0 => "Hangul",
            >= 0x3040 and < 0x30A0 => "Hiragana",
            >= 0x30A0 and < 0x3100 or >= 0xFF66 and < 0xFFA0 => "Katakana",
            >= 0x3400 and < 0xA000 or >= 0xF900 and < 0xFB00 or >= 0x20000 and < 0x32000 => "Han",
            >= 0xFF21 and < 0xFF5B => "Latin",         // full-width Latin letters
            _ => CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.OtherLetter ? "Other" : "Latin",
        };
    }

    // $…$, $$…$$, \(…\), \[…\] and LaTeX commands such as \frac or \times.
    [GeneratedRegex(@"\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+", RegexOptions.Singleline)]
    private static partial Regex Math();
}
