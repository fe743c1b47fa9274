using System.Text.Json.Nodes;
using R1Sharp.Models;
using R1Sharp.Text;

namespace R1Sharp.Generation;

/// <summary>A generated completion in text, split into reasoning and answer.</summary>
public sealed record TextCompletion(string Text, string? Reasoning, string Answer, int[] TokenIds, string FinishReason, int PromptTokens);

/// <summary>
/// Text in, text out: tokenizes prompts, runs the batched engine, decodes each row as it streams (incomplete UTF-8
/// held back), cuts at stop strings and end-of-sequence tokens, and splits &lt;think&gt; reasoning from the answer.
/// </summary>
public sealed class TextGenerator
{
    public CausalLM Model { get; }
    public HfTokenizer Tokenizer { get; }
    public IReadOnlyCollection<int> EosIds { get; }
    readonly GenerationEngine engine;

    public TextGenerator(CausalLM model, HfTokenizer tokenizer, IReadOnlyCollection<int> eosIds)
    {
        Model = model; Tokenizer = tokenizer; EosIds = eosIds;
        engine = new GenerationEngine(model);
    }

    /// <summary>End-of-sequence ids: config.json's, generation_config.json's and the tokenizer's eos token. An id in
    /// generation_config.json must be a token id of the model (an integer below vocab_size), else an error naming the
    /// file (a null in the list used to crash with a stack trace, a string was ignored).</summary>
    public static IReadOnlyCollection<int> CollectEosIds(ModelConfig cfg, HfTokenizer tok, JsonObject? generationConfig,
        string generationConfigPath = "generation_config.json")
    {
        var ids = new HashSet<int>(cfg.EosTokenIds);
        var node = generationConfig?["eos_token_id"];
        foreach (var item in node is JsonArray a ? a.ToArray() : node is null ? [] : [node])
        {
            if (item is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number && v.TryGetValue(out int id) && id >= 0 && id < cfg.VocabSize)
                ids.Add(id);
            else
                throw new R1SharpException($"{generationConfigPath}: \"eos_token_id\" expects token ids (integers from 0 to vocab_size − 1 = {cfg.VocabSize - 1}), " +
                    $"found {Excerpt.Json(item)}");
        }
        if (tok.EosTokenId is { } e) ids.Add(e);
        return ids;
    }

    /// <param name="prompts">prompt texts; rendered chat prompts already contain their special tokens</param>
    /// <param name="promptsOpenThink">the prompt ends inside &lt;think&gt; (DeepSeek-R1's template), so the completion starts as reasoning</param>
    /// <param name="onText">streaming: (row, text delta)</param>
    public IReadOnlyList<TextCompletion> Generate(IReadOnlyList<string> prompts, SamplingOptions options,
        bool promptsOpenThink = false, Action<int, string>? onText = null, bool addSpecialTokens = false)
    {
        var ids = prompts.Select(p => Tokenizer.Encode(p, addSpecialTokens)).ToArray();
        return GenerateFromIds(ids, options, promptsOpenThink, onText);
    }

    public IReadOnlyList<TextCompletion> GenerateFromIds(IReadOnlyList<IReadOnlyList<int>> promptIds, SamplingOptions options,
        bool promptsOpenThink = false, Action<int, string>? onText = null)
    {
        var eos = EosIds.ToHashSet();
        var sequences = promptIds.Select((p, i) => new Sequence(p, options, eos, index: i, Tokenizer)
        {
            OnEvent = onText is null ? null : (s, text, _) => { if (text.Length > 0) onText(s.Index, text); },
        }).ToArray();
        engine.Run(sequences);
        return sequences.Select(s =>
        {
            var split = ReasoningSplit.Split(s.Text, promptsOpenThink);
            return new TextCompletion(s.Text, split.Reasoning, split.Answer, s.Tokens.ToArray(), s.FinishReason ?? FinishReason.Length, s.Prompt.Count);
        }).ToArray();
    }
}
