using System.Text;

namespace R1Sharp.Text;

/// <summary>
/// A Hugging Face tokenizer.json byte-level BPE tokenizer (Qwen2/Qwen3, DeepSeek-V3/R1, Llama 3 …) giving the same
/// ids as the Rust `tokenizers` library. Encoding follows its pipeline: cut out added tokens, normalize, pre-tokenize,
/// BPE each piece. Thread-safe after construction.
/// </summary>
public sealed class HfTokenizer
{
    readonly HfNormalizer _normalizer;
    readonly HfPreTokenizer _preTokenizer;
    readonly BytePairEncoder _bpe;

    /// <summary>The byte-pair model (tokenizer.json's "model").</summary>
    public BytePairEncoder Model => _bpe;
    readonly AddedTokenMatcher _rawMatcher;        // added tokens matched in the raw text
    readonly AddedTokenMatcher _normalizedMatcher; // added tokens with normalized=true, matched after normalization
    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);
    readonly string?[] _tokens;   // by id
    readonly byte[]?[] _bytes;    // by id: what the id decodes to
    readonly bool[] _special;     // by id
    readonly int[] _prefix, _suffix; // what addSpecialTokens puts around the text

    public string? TokenizerJsonPath { get; }
    public string? TokenizerConfigPath { get; }
    /// <summary>Largest id + 1, added tokens included.</summary>
    public int VocabSize { get; }
    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }

    /// <summary>Loads tokenizer.json from a model folder, with tokenizer_config.json when it is there.</summary>
    public static HfTokenizer FromFolder(string dir)
    {
        string json = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(json)) throw new R1SharpException($"{json}: tokenizer.json not found in folder {dir}");
        string config = Path.Combine(dir, "tokenizer_config.json");
        return FromFile(json, File.Exists(config) ? config : null);
    }

    public static HfTokenizer FromFile(string tokenizerJsonPath, string? tokenizerConfigPath = null) =>
        new(TokenizerJson.Load(tokenizerJsonPath),
            tokenizerConfigPath == null ? TokenizerConfig.Empty : TokenizerConfig.Load(tokenizerConfigPath));

    HfTokenizer(TokenizerJson json, TokenizerConfig config)
    {
        TokenizerJsonPath = json.Path;
        TokenizerConfigPath = config.Path;
        _normalizer = json.Normalizer;
        _preTokenizer = json.PreTokenizer;
        _vocab = json.Vocab;
        _bpe = new BytePairEncoder(json.Vocab, json.Merges, json.Path, json.IgnoreMerges);

        foreach (var t in json.AddedTokens) _addedByContent.TryAdd(t.Content, t);
        // Two passes, as Hugging Face's AddedVocabulary does even without a normalizer: tokens with normalized=false
        // take priority wherever they occur; normalized ones are then looked for in the remaining normalized text.
        _rawMatcher = new AddedTokenMatcher(json.AddedTokens.Where(t => !t.Normalized));
        _normalizedMatcher = new AddedTokenMatcher(json.AddedTokens.Where(t => t.Normalized));

        VocabSize = Math.Max(json.Vocab.Values.Max(), json.AddedTokens.Count == 0 ? -1 : json.AddedTokens.Max(t => t.Id)) + 1;
        _tokens = new string?[VocabSize];
        _bytes = new byte[]?[VocabSize];
        _special = new bool[VocabSize];
        foreach (var (token, id) in json.Vocab) { _tokens[id] = token; _bytes[id] = ByteLevel.DecodeToken(token); }
        foreach (var t in json.AddedTokens)
        {
            // An added token decodes to its literal content, whatever the vocabulary spells at that id.
            _tokens[t.Id] = t.Content;
            _bytes[t.Id] = Encoding.UTF8.GetBytes(t.Content);
            _special[t.Id] = t.Special;
        }

        BosToken = config.BosToken;
        EosToken = config.EosToken;
        BosTokenId = BosToken == null ? null : TokenToId(BosToken)
            ?? throw new R1SharpException($"{config.Path}: bos_token \"{BosToken}\" is not in the vocabulary of {json.Path}");
        EosTokenId = EosToken == null ? null : TokenToId(EosToken)
            ?? throw new R1SharpException($"{config.Path}: eos_token \"{EosToken}\" is not in the vocabulary of {json.Path}");

        // transformers' Llama-style fast tokenizers rebuild the post-processor from add_bos_token/add_eos_token;
        // otherwise tokenizer.json's own TemplateProcessing decides.
        if (config.AddBosToken != null || config.AddEosToken != null)
        {
            _prefix = config.AddBosToken == true && BosTokenId is int b ? [b] : [];
            _suffix = config.AddEosToken == true && EosTokenId is int e ? [e] : [];
        }
        else
        {
            _prefix = json.TemplatePrefix;
            _suffix = json.TemplateSuffix;
        }
    }

    /// <summary>
    /// Encodes text. Added/special tokens written in the text become their ids; <paramref name="addSpecialTokens"/>
    /// adds what the post-processor adds (BOS for DeepSeek-V3, nothing for Qwen).
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefix);
        var pieces = new List<Piece>();
        foreach (var (start, end, token) in _rawMatcher.Split(text))
        {
            if (token != null) { ids.Add(token.Id); continue; }
            string segment = _normalizer.Apply(start == 0 && end == text.Length ? text : text[start..end]);
            if (_normalizedMatcher.IsEmpty) { EncodePlain(segment, ids, pieces); continue; }
            foreach (var (s2, e2, t2) in _normalizedMatcher.Split(segment))
                if (t2 != null) ids.Add(t2.Id);
                else EncodePlain(s2 == 0 && e2 == segment.Length ? segment : segment[s2..e2], ids, pieces);
        }
        if (addSpecialTokens) ids.AddRange(_suffix);
        return ids;
    }

    void EncodePlain(string segment, List<int> ids, List<Piece> pieces)
    {
        pieces.Clear();
        _preTokenizer.Split(segment, pieces);
        foreach (var piece in pieces) _bpe.Encode(piece.Span, ids);
    }

    /// <summary>Decodes ids to text; ids outside the vocabulary are ignored, as Hugging Face does.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
            if (TokenBytes(id, skipSpecialTokens) is { } b) bytes.AddRange(b);
        // Invalid UTF-8 (e.g. a truncated multi-byte character) becomes U+FFFD, like Rust's from_utf8_lossy.
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>The bytes an id stands for, or null when it is unknown or skipped.</summary>
    internal byte[]? TokenBytes(int id, bool skipSpecialTokens)
    {
        if ((uint)id >= (uint)_bytes.Length) return null;
        if (skipSpecialTokens && _special[id]) return null;
        return _bytes[id];
    }

    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out var t) ? t.Id : _vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id] : null;

    /// <summary>True for added tokens marked "special" (those Decode skips with skipSpecialTokens).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_special.Length && _special[id];

    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
