using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

/// <summary>Added-token flags and Split behaviours, with expectations taken from Hugging Face tokenizers' own docs and tests.</summary>
public class TokenizerRulesTests
{
    [Fact]
    public void Lstrip_token_absorbs_the_spaces_before_it()
    {
        // Hugging Face tokenizers tests/added_tokens.rs lstrip_tokens: "I saw a <mask> 😺" keeps "<mask>" whole, eating " ".
        using var dir = new TempDir();
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, $"[{TokenizerSynthetic.Added(300, "<mask>", lstrip: true)}]"));
        var ids = tok.Encode("I saw a  <mask> x");
        int mask = ids.ToList().IndexOf(300);
        Assert.Equal("I saw a", tok.Decode(ids.Take(mask)));
        Assert.Equal(" x", tok.Decode(ids.Skip(mask + 1)));
    }

    [Fact]
    public void Rstrip_token_absorbs_the_spaces_after_it()
    {
        using var dir = new TempDir();
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, $"[{TokenizerSynthetic.Added(300, "<mask>", rstrip: true)}]"));
        var ids = tok.Encode("a <mask>   x");
        int mask = ids.ToList().IndexOf(300);
        Assert.Equal("a ", tok.Decode(ids.Take(mask)));
        Assert.Equal("x", tok.Decode(ids.Skip(mask + 1)));
    }

    [Fact]
    public void Single_word_token_matches_only_between_non_word_characters()
    {
        using var dir = new TempDir();
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, $"[{TokenizerSynthetic.Added(300, "ab", singleWord: true, special: false)}]"));
        Assert.Contains(300, tok.Encode("x ab y"));
        Assert.Contains(300, tok.Encode("ab"));
        Assert.DoesNotContain(300, tok.Encode("xab y"));
        Assert.DoesNotContain(300, tok.Encode("x ab_"));
    }

    [Fact]
    public void Longest_added_token_wins_at_the_same_position()
    {
        using var dir = new TempDir();
        var added = $"[{TokenizerSynthetic.Added(300, "<a>")}, {TokenizerSynthetic.Added(301, "<a><b>")}]";
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, added));
        Assert.Equal([301, 300], tok.Encode("<a><b><a>"));
    }

    [Fact]
    public void Normalized_added_token_is_matched_after_normalization()
    {
        // "é" written decomposed (e + U+0301) only becomes the added token "é" after NFC.
        using var dir = new TempDir();
        var added = $"[{TokenizerSynthetic.Added(300, "\u00e9", normalized: true, special: false)}]";
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, added, normalizerJson: """{"type": "NFC"}"""));
        Assert.Equal([(int)'x', 300], tok.Encode("xe\u0301"));
    }

    // Hugging Face's documentation of SplitDelimiterBehavior, splitting "the-final--countdown" on "-".
    [Theory]
    [InlineData("Removed", "the|final|countdown")]
    [InlineData("Isolated", "the|-|final|-|-|countdown")]
    [InlineData("MergedWithPrevious", "the-|final-|-|countdown")]
    [InlineData("MergedWithNext", "the|-final|-|-countdown")]
    [InlineData("Contiguous", "the|-|final|--|countdown")]
    public void Split_behaviours_follow_hugging_face(string behavior, string expected)
    {
        using var dir = new TempDir();
        // Merges rebuild each word, so the tokens show where the pre-tokenizer cut.
        string[] merges = ["- -", "- f", "- c", "-f i", "-fi n", "-fin a", "-fina l", "-c o", "-co u", "-cou n", "-coun t", "-count d",
            "-countd o", "-countdo w", "-countdow n", "t h", "th e", "f i", "fi n", "fin a", "fina l", "c o", "co u", "cou n", "coun t",
            "count d", "countd o", "countdo w", "countdow n", "the -", "final -"];
        string pre = $$"""
            {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"String": "-"}, "behavior": "{{behavior}}", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}
            """;
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, preTokenizerJson: pre, merges: merges));
        Assert.Equal(expected, string.Join("|", TokenizerSynthetic.Pieces(tok, "the-final--countdown")));
    }

    [Fact]
    public void Byte_level_prefix_space_is_added_to_each_segment()
    {
        using var dir = new TempDir();
        string pre = """{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}""";
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, $"[{TokenizerSynthetic.Added(300, "<s>")}]", preTokenizerJson: pre));
        Assert.Equal(" a<s> b", tok.Decode(tok.Encode("a<s>b")));
        Assert.Equal(" a<s> b", tok.Decode(tok.Encode("a<s> b")));
        // The space goes before the GPT-2 regex split, so only the segment's first piece gets one.
        Assert.Equal(" hello\nworld  x", tok.Decode(tok.Encode("hello\nworld  x")));
    }

    [Theory]
    [InlineData(false, 3)]
    [InlineData(true, 1)]
    public void Ignore_merges_takes_whole_words_from_the_vocabulary(bool ignoreMerges, int expectedCount)
    {
        // "abc" is in the vocabulary but no merge builds it: only ignore_merges (Llama 3) yields it as one token.
        using var dir = new TempDir();
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, extraVocab: ["abc"], ignoreMerges: ignoreMerges));
        Assert.Equal(expectedCount, tok.Encode("abc").Count);
        Assert.Equal("abc", tok.Decode(tok.Encode("abc")));
    }

    [Fact]
    public void Template_post_processor_adds_its_special_tokens()
    {
        using var dir = new TempDir();
        string post = """
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [300], "tokens": ["<s>"]},
             "</s>": {"id": "</s>", "ids": [301], "tokens": ["</s>"]}}}
            """;
        var added = $"[{TokenizerSynthetic.Added(300, "<s>")}, {TokenizerSynthetic.Added(301, "</s>")}]";
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, added, postProcessorJson: post));
        Assert.Equal([300, (int)'a', 301], tok.Encode("a", addSpecialTokens: true));
        Assert.Equal([(int)'a'], tok.Encode("a"));
    }

    [Theory]
    [InlineData(0x1D400)] [InlineData(0x1D41A)] [InlineData(0x20000)] [InlineData(0x16F93)] [InlineData(0x1D167)]
    [InlineData(0x1D165)] [InlineData(0x1D7CE)] [InlineData(0x10140)] [InlineData(0x10107)] [InlineData(0x10100)]
    [InlineData(0x1D6C1)] [InlineData(0x1F3FB)] [InlineData(0x1F600)] [InlineData(0xE0001)] [InlineData(0xF0000)] [InlineData(0x10FFFF)]
    public void Astral_stand_in_has_the_same_category(int codePoint)
    {
        var category = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(codePoint);
        Assert.Equal(category, char.GetUnicodeCategory(CodePointRegex.StandIn(codePoint)));
    }

    [Fact]
    public void Astral_letters_are_letters_to_the_split_regex()
    {
        // \p{L}+ must keep "a𝑥b" (𝑥 = U+1D465, a letter outside the BMP) as one piece, as Oniguruma does.
        using var dir = new TempDir();
        string pre = """
            {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}
            """;
        string word = ByteLevel.Encode("a\U0001D465b"); // merges that rebuild the whole word from its byte characters
        string[] merges = Enumerable.Range(1, word.Length - 1).Select(i => word[..i] + " " + word[i]).ToArray();
        var tok = HfTokenizer.FromFile(TokenizerSynthetic.Write(dir, preTokenizerJson: pre, merges: merges));
        Assert.Equal(["a\U0001D465b", "1"], TokenizerSynthetic.Pieces(tok, "a\U0001D465b1"));
    }
}
