namespace R1Sharp.Text;

/// <summary>
/// GPT-2's reversible byte ↔ printable-character mapping used by byte-level BPE ("ByteLevel" in tokenizer.json).
/// Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space, 0x7F–0xA0, 0xAD) map to
/// U+0100 and up, so every token in the vocabulary is a string of visible characters (space becomes 'Ġ').
/// </summary>
public static class ByteLevel
{
    /// <summary>The character that stands for each byte value.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    // The mapped characters all lie below U+0144, so a small array inverts the table; -1 marks "not a byte char".
    static readonly short[] CharToByte = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    static short[] BuildCharToByte()
    {
        var inv = new short[0x144];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    /// <summary>Maps text to its UTF-8 bytes spelled in byte-level characters (the alphabet of the vocabulary).</summary>
    public static string Encode(ReadOnlySpan<char> text)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        // Lone surrogates become EF BF BD (U+FFFD), the same bytes Rust would see after lossy conversion.
        int n = System.Text.Encoding.UTF8.GetBytes(text, bytes);
        Span<char> chars = n <= 1024 ? stackalloc char[n] : new char[n];
        for (int i = 0; i < n; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>
    /// Bytes of a vocabulary token. As in the Hugging Face ByteLevel decoder, a token containing a character
    /// outside the byte alphabet is taken as plain text (its own UTF-8 bytes) rather than failing.
    /// </summary>
    public static byte[] DecodeToken(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            char c = token[i];
            int b = c < CharToByte.Length ? CharToByte[c] : -1;
            if (b < 0) return System.Text.Encoding.UTF8.GetBytes(token);
            bytes[i] = (byte)b;
        }
        return bytes;
    }
}
