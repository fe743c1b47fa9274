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
