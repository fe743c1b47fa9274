using System.Globalization;
using System.Text.RegularExpressions;

namespace R1Sharp.Text;

/// <summary>
/// A .NET regex that sees one character per Unicode code point, as the Oniguruma regexes of Hugging Face
/// tokenizers (and JavaScript's /u regexes) do.
/// </summary>
/// <remarks>
/// .NET matches UTF-16 code units, so a letter outside the Basic Multilingual Plane (𝑥, 𠀀) is two surrogates of
/// category Cs and falls out of \p{L}: the piece boundaries then differ from Hugging Face's. When a piece holds
/// surrogate pairs we match instead on a copy in which each astral code point is replaced by a BMP stand-in of
/// the same general category, and map the match positions back. The tokenizer patterns test astral characters
/// only through categories (\p{L}, \p{N}, \s, negated classes); their literal ranges are ASCII and CJK/kana, which
/// none of the stand-ins below belong to, and none of them case-folds to an ASCII letter.
/// </remarks>
public sealed class CodePointRegex
{
    readonly Regex _regex;

    public CodePointRegex(string pattern, string source)
    {
        try
        {
            _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new R1SharpException($"{source}: regex {pattern} is not supported by .NET's regex engine: {e.Message}");
        }
    }

    public static CodePointRegex Literal(string text, string source) => new(Regex.Escape(text), source);

    /// <summary>Appends each match of the regex in <paramref name="text"/> as (start, length) in UTF-16 indices of the text.</summary>
    public void FindMatches(ReadOnlySpan<char> text, List<(int Start, int Length)> matches)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (var m in _regex.EnumerateMatches(text)) matches.Add((m.Index, m.Length));
            return;
        }
        var mapped = new char[text.Length];
        var origin = new int[text.Length + 1]; // origin[k] = index in text of the k-th code point
        int n = 0;
        for (int i = 0; i < text.Length;)
        {
            origin[n] = i;
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                mapped[n++] = StandIn(char.ConvertToUtf32(c, text[i + 1]));
                i += 2;
            }
            else
            {
                // A lone surrogate reaches the model as U+FFFD (lossy UTF-8), so it is matched as one.
                mapped[n++] = char.IsSurrogate(c) ? '\uFFFD' : c;
                i++;
            }
        }
        origin[n] = text.Length;
        foreach (var m in _regex.EnumerateMatches(mapped.AsSpan(0, n)))
            matches.Add((origin[m.Index], origin[m.Index + m.Length] - origin[m.Index]));
    }

    /// <summary>A BMP character with the same general category as the astral code point.</summary>
    public static char StandIn(int codePoint) => StandIns[(int)CharUnicodeInfo.GetUnicodeCategory(codePoint)];

    // Indexed by UnicodeCategory. Chosen away from ASCII, Latin, CJK and kana so that no literal range in a
    // pre-tokenizer pattern can claim them.
    internal static readonly char[] StandIns =
    [
        '\u10A0', // UppercaseLetter: Georgian capital An
        '\u2D00', // LowercaseLetter: Georgian small An
        '\u01C5', // TitlecaseLetter: Dž
        '\u02B0', // ModifierLetter: modifier small h
        '\u1200', // OtherLetter: Ethiopic ha
        '\u0300', // NonSpacingMark: combining grave
        '\u0903', // SpacingCombiningMark: Devanagari visarga
        '\u20DD', // EnclosingMark: combining enclosing circle
        '\u0660', // DecimalDigitNumber: Arabic-Indic zero
        '\u2160', // LetterNumber: Roman numeral one
        '\u2460', // OtherNumber: circled one
        '\u2000', // SpaceSeparator (none are astral)
        '\u2028', // LineSeparator (none are astral)
        '\u2029', // ParagraphSeparator (none are astral)
        '\u0085', // Control (none are astral)
        '\u2060', // Format: word joiner
        '\uFFFD', // Surrogate (cannot occur for a code point)
        '\uE000', // PrivateUse
        '\u203F', // ConnectorPunctuation: undertie
        '\u2010', // DashPunctuation: hyphen
        '\u2045', // OpenPunctuation: left square bracket with quill
        '\u2046', // ClosePunctuation: right square bracket with quill
        '\u00AB', // InitialQuotePunctuation
        '\u00BB', // FinalQuotePunctuation
        '\u2020', // OtherPunctuation: dagger
        '\u2200', // MathSymbol: for all
        '\u20A0', // CurrencySymbol: euro-currency sign
        '\u02C2', // ModifierSymbol: modifier left arrowhead
        '\u2100', // OtherSymbol: account of
        '\u0378', // OtherNotAssigned
    ];
}
