using System.Text;

namespace R1Sharp.Text;

/// <summary>
/// Decodes ids one at a time for streaming output. A character split across tokens (byte-level BPE often splits
/// emoji and CJK) is held back until its last byte arrives, so no U+FFFD is shown for text that will complete.
/// Concatenating every Push and the final Flush gives exactly <see cref="HfTokenizer.Decode"/> of all the ids.
/// Not thread-safe: one decoder per stream.
/// </summary>
public sealed class StreamingDecoder
{
    readonly HfTokenizer _tokenizer;
    readonly bool _skipSpecialTokens;
    // .NET's UTF-8 decoder keeps an incomplete trailing sequence between calls and, like Decode, turns bytes that
    // can never complete into U+FFFD.
    readonly Decoder _utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    char[] _chars = new char[64];

    internal StreamingDecoder(HfTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one id; returns the text completed by it (possibly empty).</summary>
    public string Push(int id)
    {
        var bytes = _tokenizer.TokenBytes(id, _skipSpecialTokens);
        return bytes == null ? "" : Convert(bytes, flush: false);
    }

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD. The decoder can be reused.</summary>
    public string Flush() => Convert([], flush: true);

    string Convert(byte[] bytes, bool flush)
    {
        // Each byte yields at most one char, plus up to 3 held-back bytes (a 4-byte sequence gives a surrogate pair).
        int needed = bytes.Length + 4;
        if (_chars.Length < needed) _chars = new char[Math.Max(needed, _chars.Length * 2)];
        int n = _utf8.GetChars(bytes, 0, bytes.Length, _chars, 0, flush);
        return n == 0 ? "" : new string(_chars, 0, n);
    }
}
