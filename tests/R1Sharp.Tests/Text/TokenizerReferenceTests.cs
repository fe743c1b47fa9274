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
}
