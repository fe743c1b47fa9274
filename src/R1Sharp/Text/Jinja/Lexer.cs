using System.Globalization;
using System.Text;

namespace R1Sharp.Text.Jinja;

/// <summary>
/// Splits a template into text and tag tokens the way jinja2's lexer does with the options transformers uses:
/// trim_blocks (drop the first newline after a block or comment tag), lstrip_blocks (drop spaces and tabs
/// between a line start and a block or comment tag), and '-' / '+' whitespace control on tag delimiters.
/// </summary>
internal sealed class Lexer
{
    readonly string _src;
    readonly List<Token> _tokens = new();
    int _pos;
    int _line = 1;
    bool _lineStarting = true; // jinja2: the previous token ended with a newline (or we are at the start)

    Lexer(string source) => _src = Normalize(source);

    public static List<Token> Tokenize(string source)
    {
        var lexer = new Lexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    // jinja2 joins source.splitlines() with '\n': newlines are normalised and one trailing newline is dropped
    // (keep_trailing_newline=False).
    static string Normalize(string s)
    {
        s = s.Replace("\r\n", "\n").Replace('\r', '\n');
        return s.EndsWith('\n') ? s[..^1] : s;
    }

    void Run()
    {
        while (_pos < _src.Length)
        {
            int tag = FindTagStart(_pos);
            string text = _src[_pos..(tag < 0 ? _src.Length : tag)];
            if (tag < 0) { EmitText(text); _pos = _src.Length; break; }

            char kind = _src[tag + 1];                         // '{', '%' or '#'
            char sign = tag + 2 < _src.Length ? _src[tag + 2] : '\0';
            char strip = sign is '-' or '+' ? sign : '\0';
            if (strip == '-') text = text.TrimEnd(PyWhitespace);
            else if (strip != '+' && kind != '{') text = LstripBlock(text);
            EmitText(text);
            _pos = tag + 2 + (strip != '\0' ? 1 : 0);

            if (kind == '#') LexComment(tag);
            else if (kind == '%' && TryLexRaw(tag)) { }
            else LexTag(kind == '{' ? TokenKind.VariableBegin : TokenKind.BlockBegin);
        }
        _tokens.Add(new Token(TokenKind.End, "", _line));
    }

    int FindTagStart(int from)
    {
        for (int i = _src.IndexOf('{', from); i >= 0 && i + 1 < _src.Length; i = _src.IndexOf('{', i + 1))
            if (_src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    // lstrip_blocks: whitespace between the last newline (or a line start) and the tag goes.
    string LstripBlock(string text)
    {
        int lpos = text.LastIndexOf('\n') + 1;
        if (lpos == 0 && !_lineStarting) return text;
        if (lpos == text.Length) return text;
        for (int i = lpos; i < text.Length; i++)
            if (!IsPySpace(text[i])) return text;
        return text[..lpos];
    }

    void EmitText(string text)
    {
        if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, _line));
        _line += Count(text, '\n');
    }

    void LexComment(int tagStart)
    {
        int end = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0) throw JinjaError.At(_line, "comment '{#' is never closed with '#}'");
        bool minus = end > _pos && _src[end - 1] == '-';
        bool plus = end > _pos && _src[end - 1] == '+';
        _line += Count(_src[tagStart..end], '\n');
        _pos = end + 2;
        AfterBlockEnd(minus, plus);
    }

    // After '%}' or '#}': '-' eats all following whitespace; otherwise trim_blocks eats one newline unless '+'.
    void AfterBlockEnd(bool minus, bool plus)
    {
        int start = _pos;
        if (minus) while (_pos < _src.Length && IsPySpace(_src[_pos])) _pos++;
        else if (!plus && _pos < _src.Length && _src[_pos] == '\n') _pos++;
        _line += Count(_src[start.._pos], '\n');
        _lineStarting = _pos > 0 && _src[_pos - 1] == '\n';
    }

    void LexTag(TokenKind begin)
    {
        _tokens.Add(new Token(begin, begin == TokenKind.VariableBegin ? "{{" : "{%", _line));
        string close = begin == TokenKind.VariableBegin ? "}}" : "%}";
        int depth = 0; // jinja2 ignores tag ends inside brackets
        while (true)
        {
            SkipSpaces();
            if (_pos >= _src.Length) throw JinjaError.At(_line, $"tag is never closed with '{close}'");
            if (depth == 0 && TryTagEnd(close, begin)) return;
            char c = _src[_pos];
            if (c == '\'' || c == '"') LexString(c);
            else if (char.IsAsciiDigit(c)) LexNumber();
            else if (char.IsLetter(c) || c == '_') LexName();
            else
            {
                string op = MatchOperator();
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}") depth--;
                _tokens.Add(new Token(TokenKind.Operator, op, _line));
            }
        }
    }

    bool TryTagEnd(string close, TokenKind begin)
    {
        char sign = _src[_pos];
        int at = sign is '-' or '+' ? _pos + 1 : _pos;
        if (string.CompareOrdinal(_src, at, close, 0, 2) != 0) return false;
        if (sign == '+' && begin == TokenKind.VariableBegin) return false;
        _tokens.Add(new Token(begin == TokenKind.VariableBegin ? TokenKind.VariableEnd : TokenKind.BlockEnd, close, _line));
        _pos = at + 2;
        if (begin == TokenKind.VariableBegin)
        {
            int start = _pos;
            if (sign == '-') while (_pos < _src.Length && IsPySpace(_src[_pos])) _pos++;
            _line += Count(_src[start.._pos], '\n');
            _lineStarting = _pos > 0 && _src[_pos - 1] == '\n';
        }
        else AfterBlockEnd(sign == '-', sign == '+');
        return true;
    }

    // {% raw %}...{% endraw %}: the body is text, untouched by the lexer.
    bool TryLexRaw(int tagStart)
    {
        int p = _pos;
        while (p < _src.Length && IsPySpace(_src[p])) p++;
        if (string.CompareOrdinal(_src, p, "raw", 0, 3) != 0) return false;
        p += 3;
        while (p < _src.Length && IsPySpace(_src[p])) p++;
        bool minus = p < _src.Length && _src[p] == '-';
        if (minus || (p < _src.Length && _src[p] == '+')) p++;
        if (string.CompareOrdinal(_src, p, "%}", 0, 2) != 0) return false;
        _line += Count(_src[tagStart..p], '\n');
        _pos = p + 2;
        // jinja2's raw_begin rule has no trim_blocks newline; only '-%}' strips what follows.
        int wsStart = _pos;
        if (minus) while (_pos < _src.Length && IsPySpace(_src[_pos])) _pos++;
        _line += Count(_src[wsStart.._pos], '\n');
        _lineStarting = _src[_pos - 1] == '\n';
        int bodyStart = _pos;
        for (int i = FindTagStart(_pos); i >= 0; i = FindTagStart(i + 1))
        {
            if (_src[i + 1] != '%') continue;
            int q = i + 2;
            char sign = q < _src.Length && _src[q] is '-' or '+' ? _src[q++] : '\0';
            while (q < _src.Length && IsPySpace(_src[q])) q++;
            if (string.CompareOrdinal(_src, q, "endraw", 0, 6) != 0) continue;
            q += 6;
            while (q < _src.Length && IsPySpace(_src[q])) q++;
            bool endMinus = q < _src.Length && _src[q] == '-';
            if (endMinus || (q < _src.Length && _src[q] == '+')) q++;
            if (string.CompareOrdinal(_src, q, "%}", 0, 2) != 0) continue;
            string body = _src[bodyStart..i];
            if (sign == '-') body = body.TrimEnd(PyWhitespace);
            else if (sign != '+') body = LstripBlock(body);
            EmitText(body);
            _line += Count(_src[i..q], '\n');
            _pos = q + 2;
            AfterBlockEnd(endMinus, false);
            return true;
        }
        throw JinjaError.At(_line, "'{% raw %}' is never closed with '{% endraw %}'");
    }

    void SkipSpaces()
    {
        while (_pos < _src.Length && IsPySpace(_src[_pos]))
        {
            if (_src[_pos] == '\n') _line++;
            _pos++;
        }
    }

    static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"];

    string MatchOperator()
    {
        foreach (var op in Operators)
            if (string.CompareOrdinal(_src, _pos, op, 0, op.Length) == 0) { _pos += op.Length; return op; }
        throw JinjaError.At(_line, $"unexpected character '{_src[_pos]}' in tag");
    }

    void LexName()
    {
        int start = _pos;
        while (_pos < _src.Length && (char.IsLetterOrDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        _tokens.Add(new Token(TokenKind.Name, _src[start.._pos], _line));
    }

    void LexNumber()
    {
        int start = _pos;
        bool isFloat = false;
        while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        if (_pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        }
        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _src.Length && _src[_pos] is '+' or '-') _pos++;
            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
            {
                isFloat = true;
                while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) _pos++;
            }
            else _pos = save;
        }
        string text = _src[start.._pos].Replace("_", "");
        _tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, text, _line));
    }

    void LexString(char quote)
    {
        int line = _line;
        var sb = new StringBuilder();
        _pos++;
        while (true)
        {
            if (_pos >= _src.Length) throw JinjaError.At(line, "string literal is never closed");
            char c = _src[_pos++];
            if (c == quote) break;
            if (c == '\n') _line++;
            if (c != '\\' || _pos >= _src.Length) { sb.Append(c); continue; }
            _pos = Unescape(_src, _pos, sb);
        }
        _tokens.Add(new Token(TokenKind.String, sb.ToString(), line));
    }

    // Python's 'unicode-escape' decoding, which jinja2 applies to string literals. Unknown escapes stay as written.
    static int Unescape(string s, int p, StringBuilder sb)
    {
        char e = s[p];
        switch (e)
        {
            case 'n': sb.Append('\n'); return p + 1;
            case 't': sb.Append('\t'); return p + 1;
            case 'r': sb.Append('\r'); return p + 1;
            case '\\': sb.Append('\\'); return p + 1;
            case '\'': sb.Append('\''); return p + 1;
            case '"': sb.Append('"'); return p + 1;
            case 'a': sb.Append('\a'); return p + 1;
            case 'b': sb.Append('\b'); return p + 1;
            case 'f': sb.Append('\f'); return p + 1;
            case 'v': sb.Append('\v'); return p + 1;
            case '\n': return p + 1; // line continuation
            case 'x': return Hex(s, p, 2, sb);
            case 'u': return Hex(s, p, 4, sb);
            case 'U': return Hex(s, p, 8, sb);
        }
        if (e is >= '0' and <= '7')
        {
            int n = 0, q = p;
            while (q < s.Length && q < p + 3 && s[q] is >= '0' and <= '7') n = n * 8 + (s[q++] - '0');
            sb.Append((char)n);
            return q;
        }
        sb.Append('\\');
        return p;
    }

    static int Hex(string s, int p, int digits, StringBuilder sb)
    {
        if (p + 1 + digits > s.Length || !int.TryParse(s.AsSpan(p + 1, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int cp))
            throw new R1SharpException($"chat template: truncated \\{s[p]} escape in a string literal");
        sb.Append(char.ConvertFromUtf32(cp));
        return p + 1 + digits;
    }

    // Python's str.isspace / \s: ASCII whitespace plus Unicode separators.
    internal static bool IsPySpace(char c) => char.IsWhiteSpace(c) || c is '\x1c' or '\x1d' or '\x1e' or '\x1f';
    internal static readonly char[] PyWhitespace = Enumerable.Range(0, 0x3001).Select(i => (char)i).Where(IsPySpace).ToArray();

    static int Count(string s, char c)
    {
        int n = 0;
        foreach (var ch in s) if (ch == c) n++;
        return n;
    }
}
