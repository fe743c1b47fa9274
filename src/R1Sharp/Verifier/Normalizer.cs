using System.Text;
using System.Text.RegularExpressions;

namespace R1Sharp.Verifier;

/// <summary>String-level clean-up of an extracted answer before parsing: layout commands, units that
/// carry no value (%, °, \$), number formatting (10,\!080; 1 000; 1,22), and words that join
/// alternatives ("and", "or") becoming commas. Choices written down:
/// <list type="bullet">
/// <item>28% equals 28 (the percent sign is dropped, as graders of MATH do), not 0.28.</item>
/// <item>90° equals 90; degrees are not converted to radians.</item>
/// <item>"or" glued between a value and the next capitalised label ("W(x)=1orW(x)=-1") still separates.</item>
/// <item>A comma between digit groups of three is a thousands separator only outside brackets, so
/// (12,102) stays an interval; a lone "1,22" or "0,111" is a decimal comma.</item>
/// </list></summary>
internal static partial class Normalizer
{
    [GeneratedRegex(@"\\(?:text|mbox|textbf|textnormal|mathrm|textit)\s*\{\s*(?:and|or|,)\s*\}|\b(?:and|or)\b|(?<=[\d)])or(?=[A-Z])|\\(?:q?quad)\b|\\(?:hspace|vspace)\*?\{[^{}]*\}")]
    private static partial Regex Joiners();

    [GeneratedRegex(@"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|\\%|%|\\\$|\$|\\!|\\,|\\;|\\:|\\displaystyle|\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|biggl|biggr)(?![a-zA-Z])|\bpercentage\b|\bpercent\b|\bpct\b|\\mathrm\{\s*pct\s*\}")]
    private static partial Regex Noise();

    [GeneratedRegex(@",\s*\\!\s*")]
    private static partial Regex ThinSpaceComma();

    [GeneratedRegex(@"^\d{1,3}(?: \d{3})+(?:\.\d+)?$")]
    private static partial Regex SpaceThousands();

    [GeneratedRegex(@"^(?:0,\d+|[1-9]\d*,(?:\d{1,2}|\d{4,}))$")]
    private static partial Regex DecimalComma();

    [GeneratedRegex(@"\\(?:dfrac|tfrac|cfrac)")]
    private static partial Regex FracVariants();

    [GeneratedRegex(@"\s*\{\s*,\s*\}\s*")]
    private static partial Regex BracedComma();

    /// <param name="plain">The answer came from plain text (no LaTeX): only there is "1,22" read with a decimal comma.</param>
    public static string Normalize(string s, bool plain = false)
    {
        s = BracedComma().Replace(s, ",");
        s = ThinSpaceComma().Replace(s, ",");
        s = FracVariants().Replace(s, "\\frac");
        s = Noise().Replace(s, " ");
        s = Joiners().Replace(s, ",");
        s = s.Trim().TrimEnd('.', ',', ';', ' ').TrimStart(',', ' ');
        if (SpaceThousands().IsMatch(s)) s = s.Replace(" ", "");
        if (plain && DecimalComma().IsMatch(s)) return s.Replace(',', '.');
        return RemoveThousands(s);
    }

    /// <summary>Drops commas inside digit groups like 7,425,000 when they are at bracket depth 0.</summary>
    static string RemoveThousands(string s)
    {
        if (s.IndexOf(',') < 0) return s;
        var sb = new StringBuilder(s.Length);
        int depth = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '(' or '[' || (c == '{' && i > 0 && s[i - 1] == '\\')) depth++;
            else if (c is ')' or ']' || (c == '}' && i > 0 && s[i - 1] == '\\')) depth--;
            if (c == ',' && depth == 0 && IsThousandsComma(s, i)) continue;
            sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>True when s[i] is a comma with 1–3 leading digits before (not starting with 0 unless alone)
    /// and exactly three digits after, as in 10,080 or 1,000.5.</summary>
    static bool IsThousandsComma(string s, int i)
    {
        int j = i - 1, n = 0;
        while (j >= 0 && char.IsAsciiDigit(s[j])) { j--; n++; }
        if (n == 0) return false;
        bool groupedBefore = j >= 0 && s[j] == ',';
        if (!groupedBefore && (n > 3 || s[j + 1] == '0')) return false;
        if (groupedBefore && n != 3) return false;
        if (j >= 0 && (s[j] == '.' || char.IsAsciiLetter(s[j]) || s[j] == '_')) return false;
        int k = i + 1, m = 0;
        while (k < s.Length && char.IsAsciiDigit(s[k])) { k++; m++; }
        return m == 3;
    }
}
