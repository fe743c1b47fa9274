using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;

namespace R1Sharp.Text;

/// <summary>
/// The BPE model of tokenizer.json: turns one pre-token into ids by applying the ranked merges to its byte-level
/// spelling. The merge loop itself is Microsoft.ML.Tokenizers' BpeTokenizer, created with no pre-tokenizer and no
/// normalizer so that it sees exactly the pieces our <see cref="HfPreTokenizer"/> produced; we do the byte-level
/// mapping ourselves (<see cref="ByteLevel"/>) so every input character is in the vocabulary's alphabet.
/// </summary>
public sealed class BytePairEncoder
{
    readonly BpeTokenizer _bpe;
    readonly IReadOnlyDictionary<string, int>? _wholeWords; // set when the model has ignore_merges (Llama 3 style)

    // Pre-token text → ids. Natural text repeats a small set of words, so most pieces are served from here.
    // Bounded by clearing: simple, and a refill costs only the misses.
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    const int MaxCacheEntries = 250_000;
    const int MaxCachedLength = 128;

    public BytePairEncoder(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, string file,
        bool ignoreMerges = false)
    {
        _wholeWords = ignoreMerges ? vocab : null;
        try
        {
            _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = merges.Select(m => m.Left + " " + m.Right),
                PreTokenizer = null,
                Normalizer = null,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new R1SharpException($"{file}: the BPE model could not be built: {e.Message}", e);
        }
        _lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Appends the ids of one pre-token (raw text, before byte-level mapping).</summary>
    public void Encode(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (_lookup.TryGetValue(piece, out var cached)) { ids.AddRange(cached); return; }
        var result = EncodeUncached(piece);
        if (piece.Length <= MaxCachedLength)
        {
            if (_cache.Count >= MaxCacheEntries) _cache.Clear();
            _lookup.TryAdd(piece, result);
        }
        ids.AddRange(result);
    }

    int[] EncodeUncached(ReadOnlySpan<char> piece)
    {
        string symbols = ByteLevel.Encode(piece);
        // ignore_merges: a pre-token that is itself in the vocabulary is taken whole, whatever the merges would do.
        if (_wholeWords != null && _wholeWords.TryGetValue(symbols, out int whole)) return [whole];
        var result = _bpe.EncodeToIds(symbols, considerPreTokenization: false, considerNormalization: false);
        return result as int[] ?? result.ToArray();
    }
}
