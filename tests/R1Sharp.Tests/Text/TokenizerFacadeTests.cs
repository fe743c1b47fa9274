using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

/// <summary>Special tokens, vocabulary look-ups and loading errors.</summary>
public class TokenizerFacadeTests
{
    [Fact]
    public void Qwen3_special_tokens_come_from_tokenizer_config()
    {
        var tok = TokenizerTestData.Get("qwen3");
        Assert.Equal(151669, tok.VocabSize);
        Assert.Null(tok.BosTokenId);
        Assert.Equal("<|im_end|>", tok.EosToken);
        Assert.Equal(151645, tok.EosTokenId);
        Assert.True(tok.IsSpecial(151643));          // <|endoftext|>
        Assert.False(tok.IsSpecial(tok.TokenToId("<think>")!.Value)); // an added token, but not special
        Assert.Equal(tok.Encode("hi"), tok.Encode("hi", addSpecialTokens: true)); // Qwen adds no BOS
        Assert.EndsWith("tokenizer_config.json", tok.TokenizerConfigPath);
        Assert.EndsWith("tokenizer.json", tok.TokenizerJsonPath);
    }

    [Fact]
    public void DeepSeek_v3_adds_bos_when_asked()
    {
        var tok = TokenizerTestData.Get("deepseek_v3");
        Assert.Equal(128815, tok.VocabSize);
        Assert.Equal("<｜begin▁of▁sentence｜>", tok.BosToken);
        Assert.Equal(0, tok.BosTokenId);
        Assert.Equal(1, tok.EosTokenId);
        Assert.Equal([0, .. tok.Encode("Hello")], tok.Encode("Hello", addSpecialTokens: true));
        Assert.Equal("Hello", tok.Decode(tok.Encode("Hello", addSpecialTokens: true), skipSpecialTokens: true));
        Assert.Equal("<｜begin▁of▁sentence｜>Hello", tok.Decode(tok.Encode("Hello", addSpecialTokens: true)));
    }

    [Fact]
    public void Token_lookups_use_byte_level_spelling_and_added_contents()
    {
        var tok = TokenizerTestData.Get("qwen3");
        Assert.Equal("Ġworld", tok.IdToToken(1879));
        Assert.Equal(1879, tok.TokenToId("Ġworld"));
        Assert.Equal(151644, tok.TokenToId("<|im_start|>"));
        Assert.Equal("<|im_start|>", tok.IdToToken(151644));
        Assert.Null(tok.TokenToId("no such token"));
        Assert.Null(tok.IdToToken(-1));
        Assert.Null(tok.IdToToken(1_000_000));
        Assert.Equal(" world", tok.Decode([1879, 1_000_000, -5])); // unknown ids are ignored, as in Hugging Face
    }

    [Fact]
    public void Parallel_encoding_gives_the_sequential_ids()
    {
        var tok = TokenizerTestData.Get("deepseek_v3");
        var texts = TokenizerTestData.ReferenceCases.Select(c => c.Text).ToArray();
        var expected = texts.Select(t => tok.Encode(t).ToArray()).ToArray();
        Parallel.For(0, 400, i => Assert.Equal(expected[i % texts.Length], tok.Encode(texts[i % texts.Length])));
    }

    [Fact]
    public void Empty_text_encodes_to_nothing()
    {
        Assert.Empty(TokenizerTestData.Get("qwen3").Encode(""));
        Assert.Equal([0], TokenizerTestData.Get("deepseek_v3").Encode("", addSpecialTokens: true));
        Assert.Equal("", TokenizerTestData.Get("qwen3").Decode([]));
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("deepseek_v3")]
    public void Lone_surrogates_encode_as_the_replacement_character(string tokenizer)
    {
        // .NET strings can hold them; the Rust library only ever sees U+FFFD (lossy UTF-8) in their place.
        var tok = TokenizerTestData.Get(tokenizer);
        Assert.Equal(tok.Encode("a\uFFFDb c\uFFFD"), tok.Encode("a\uD800b c\uDC00"));
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<R1SharpException>(() => HfTokenizer.FromFolder(dir.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(dir.Path, e.Message);
        Assert.Throws<R1SharpException>(() => HfTokenizer.FromFile(dir.File("tokenizer.json")));
    }

    [Fact]
    public void Malformed_json_names_the_file_and_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), "{\n  \"model\": {\n    \"type\": \"BPE\",,\n}");
        var e = Assert.Throws<R1SharpException>(() => HfTokenizer.FromFolder(dir.Path));
        Assert.Contains(dir.File("tokenizer.json"), e.Message);
        Assert.Contains("malformed JSON", e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void Non_bpe_model_is_refused()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""");
        var e = Assert.Throws<R1SharpException>(() => HfTokenizer.FromFolder(dir.Path));
        Assert.Contains("WordPiece", e.Message);
        Assert.Contains(dir.File("tokenizer.json"), e.Message);
    }

    [Fact]
    public void Unsupported_pre_tokenizer_is_refused()
    {
        using var dir = new TempDir();
        var path = TokenizerSynthetic.Write(dir, preTokenizerJson: """{"type": "Metaspace", "replacement": "▁"}""");
        var e = Assert.Throws<R1SharpException>(() => HfTokenizer.FromFile(path));
        Assert.Contains("Metaspace", e.Message);
    }

    [Fact]
    public void Config_tokens_may_be_strings_or_objects()
    {
        using var dir = new TempDir();
        var added = $"[{TokenizerSynthetic.Added(300, "<s>")}, {TokenizerSynthetic.Added(301, "</s>")}]";
        var path = TokenizerSynthetic.Write(dir, added);
        File.WriteAllText(dir.File("tokenizer_config.json"),
            """{"add_bos_token": true, "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>"}""");
        var tok = HfTokenizer.FromFolder(dir.Path);
        Assert.Equal(300, tok.BosTokenId);
        Assert.Equal(301, tok.EosTokenId);
        Assert.Equal([300, (int)'a'], tok.Encode("a", addSpecialTokens: true));

        File.WriteAllText(dir.File("tokenizer_config.json"), """{"eos_token": "<nope>"}""");
        var e = Assert.Throws<R1SharpException>(() => HfTokenizer.FromFolder(dir.Path));
        Assert.Contains("<nope>", e.Message);
    }
}
