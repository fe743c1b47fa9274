using System.Text;
using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

public class TokenizerStreamingTests
{
    [Theory]
    [MemberData(nameof(TokenizerTestData.ReferenceCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Streaming_concatenation_equals_decode_and_never_shows_replacement_characters(string tokenizer, int caseIndex)
    {
        var (text, _) = TokenizerTestData.ReferenceCases[caseIndex];
        var tok = TokenizerTestData.Get(tokenizer);
        var ids = tok.Encode(text);
        var stream = tok.CreateStreamingDecoder();
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            string chunk = stream.Push(id);
            Assert.DoesNotContain('\uFFFD', chunk);
            Assert.False(chunk.Length > 0 && char.IsHighSurrogate(chunk[^1]), "a surrogate pair was split between chunks");
            sb.Append(chunk);
        }
        sb.Append(stream.Flush());
        Assert.Equal(tok.Decode(ids), sb.ToString());
    }

    [Theory]
    [InlineData("qwen3", "🫠")]
    [InlineData("qwen3", "𠀀")]
    [InlineData("qwen3", "龘")]
    [InlineData("deepseek_v3", "😀")]
    [InlineData("deepseek_v3", "𐍈")]
    public void Character_split_across_tokens_is_held_back_until_complete(string tokenizer, string character)
    {
        var tok = TokenizerTestData.Get(tokenizer);
        var ids = tok.Encode(character);
        Assert.True(ids.Count > 1, $"expected {character} to take several tokens, got {ids.Count}");
        var stream = tok.CreateStreamingDecoder();
        var chunks = ids.Select(stream.Push).ToList();
        Assert.Equal("", chunks[0]);             // the first token holds only a partial UTF-8 sequence
        Assert.Equal(character, string.Concat(chunks));
        Assert.Equal("", stream.Flush());
    }

    [Fact]
    public void Flush_turns_an_unfinished_character_into_a_replacement_character()
    {
        var tok = TokenizerTestData.Get("qwen3");
        var ids = tok.Encode("🫠");
        var stream = tok.CreateStreamingDecoder();
        Assert.Equal("", stream.Push(ids[0]));
        Assert.Equal("\uFFFD", stream.Flush());
        Assert.Equal("\uFFFD", tok.Decode([ids[0]]));
    }

    [Fact]
    public void Special_tokens_stream_as_their_text_or_are_skipped()
    {
        var tok = TokenizerTestData.Get("qwen3");
        var ids = tok.Encode("<|im_start|>user\nhi<|im_end|>");
        Assert.Equal("<|im_start|>user\nhi<|im_end|>", string.Concat(ids.Select(tok.CreateStreamingDecoder().Push)));
        var skipping = tok.CreateStreamingDecoder(skipSpecialTokens: true);
        Assert.Equal("user\nhi", string.Concat(ids.Select(skipping.Push)));
    }
}
