using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

/// <summary>Ids against an independent implementation (@lenml/tokenizers), and exact round trips.</summary>
public class TokenizerReferenceTests
{
    [Theory]
    [MemberData(nameof(TokenizerTestData.ReferenceCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Encode_matches_reference_ids(string tokenizer, int caseIndex)
    {
        var (text, expected) = TokenizerTestData.ReferenceCases[caseIndex];
        var tok = TokenizerTestData.Get(tokenizer);
        Assert.Equal(expected[tokenizer], tok.Encode(text));
    }

    [Theory]
    [MemberData(nameof(TokenizerTestData.ReferenceCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Decode_of_encode_is_identity(string tokenizer, int caseIndex)
    {
        var (text, _) = TokenizerTestData.ReferenceCases[caseIndex];
        var tok = TokenizerTestData.Get(tokenizer);
        string expected = tokenizer == "qwen3" ? text.Normalize(System.Text.NormalizationForm.FormC) : text;
        Assert.Equal(expected, tok.Decode(tok.Encode(text)));
    }
}

/// <summary>Long mixed texts (scripts, LaTeX, code, emoji, whitespace runs, inline special tokens) from Fixtures/tokenizer.</summary>
public class TokenizerMixedTextTests
{
    static readonly IReadOnlyList<(string Text, Dictionary<string, int[]> Ids)> Cases =
        TokenizerTestData.LoadCases(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizer", "mixed_text_ids.json"));

    public static IEnumerable<object[]> CaseIndices() =>
        from name in TokenizerTestData.Names from i in Enumerable.Range(0, Cases.Count) select new object[] { name, i };

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Encode_matches_reference_and_round_trips(string tokenizer, int caseIndex)
    {
        var (text, expected) = Cases[caseIndex];
        var tok = TokenizerTestData.Get(tokenizer);
        var ids = tok.Encode(text);
        Assert.Equal(expected[tokenizer], ids);
        string normalized = tokenizer == "qwen3" ? text.Normalize(System.Text.NormalizationForm.FormC) : text;
        Assert.Equal(normalized, tok.Decode(ids));
    }
}

/// <summary>Long runs without a space (one pre-token of thousands of bytes) from Fixtures/tokenizer/long_run_ids.json:
/// the heap-ordered byte-pair merge must give exactly the reference's ids on words far longer than natural text has.</summary>
public class TokenizerLongRunTests
{
    static readonly IReadOnlyList<(string Text, Dictionary<string, int[]> Ids)> Cases =
        TokenizerTestData.LoadCases(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizer", "long_run_ids.json"));

    public static IEnumerable<object[]> CaseIndices() =>
        from name in TokenizerTestData.Names from i in Enumerable.Range(0, Cases.Count) select new object[] { name, i };

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Encode_matches_reference_and_round_trips(string tokenizer, int caseIndex)
    {
        var (text, expected) = Cases[caseIndex];
        var tok = TokenizerTestData.Get(tokenizer);
        var ids = tok.Encode(text);
        Assert.Equal(expected[tokenizer], ids);
        Assert.Equal(text, tok.Decode(ids));
    }

    /// <summary>The rank-by-rank merge that long words take gives the reference's ids too, on every case.</summary>
    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void RankOrderMerge_matches_reference(string tokenizer, int caseIndex)
    {
        var (text, expected) = Cases[caseIndex];
        var tok = RankOrder(tokenizer);
        Assert.Equal(expected[tokenizer], tok.Encode(text));
    }

    /// <summary>Random runs (few distinct characters, so pairs repeat and overlap; mixed scripts, digits, emoji) give
    /// the same ids through the rank-by-rank merge as through the heap that the reference cases check.</summary>
    [Theory]
    [InlineData("qwen3", "ab", 5000)]
    [InlineData("qwen3", "aaab ", 3000)]
    [InlineData("deepseek_v3", "abcxyz", 20000)]
    [InlineData("qwen3", "的一是不了人我在有他这为之大来以个中上们", 6000)]
    [InlineData("deepseek_v3", "𝑥∑😀é\t{}", 4000)]
    public void RankOrderMerge_equals_heap_merge_on_random_runs(string tokenizer, string alphabet, int length)
    {
        var rng = new Random(length);
        var chars = alphabet.EnumerateRunes().Select(r => r.ToString()).ToArray();
        string text = string.Concat(Enumerable.Range(0, length).Select(_ => chars[rng.Next(chars.Length)]));
        Assert.Equal(WithThreshold(tokenizer, int.MaxValue).Encode(text), RankOrder(tokenizer).Encode(text));
    }

    static readonly Dictionary<(string, int), HfTokenizer> s_instances = [];

    /// <summary>An instance of the tokenizer whose byte-pair model takes the rank-by-rank path for every word.</summary>
    static HfTokenizer RankOrder(string name) => WithThreshold(name, 2);

    static HfTokenizer WithThreshold(string name, int threshold)
    {
        lock (s_instances)
        {
            if (!s_instances.TryGetValue((name, threshold), out var tok))
            {
                tok = HfTokenizer.FromFolder(SharedData.Path("tokenizers", name));
                tok.Model.RankOrderThreshold = threshold;
                s_instances[(name, threshold)] = tok;
            }
            return tok;
        }
    }
}
