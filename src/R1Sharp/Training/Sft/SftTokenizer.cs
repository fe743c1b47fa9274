using R1Sharp.Text;

namespace R1Sharp.Training.Sft;

/// <summary>A sample's token ids and which of them the loss counts (token i is predicted from position i − 1).</summary>
public sealed record TokenizedSample(int[] Ids, bool[] Trained)
{
    public int Length => Ids.Length;

    /// <summary>Tokens the loss counts: trained tokens that have a position before them.</summary>
    public int LossTokens => Trained.Skip(1).Count(t => t);

    /// <summary>The first <paramref name="max"/> tokens (TRL truncates at the end).</summary>
    public TokenizedSample Truncate(int max) => Ids.Length <= max ? this : new(Ids[..max], Trained[..max]);
}

/// <summary>
/// Turns <see cref="SftExample"/> rows into token ids and a loss mask, as TRL's SFTTrainer does: conversations
/// through the model's chat template (<see cref="ChatSegments"/>) with the loss on assistant turns
/// (assistant_only_loss), prompt/completion pairs with the loss on the completion (completion_only_loss), plain text
/// with the loss everywhere. Segments are tokenized one by one, without added special tokens for chat (the template
/// writes them; transformers' apply_chat_template does the same), so a reply's tokens are those the model emits after
/// the tokenized prompt at inference.
/// </summary>
public sealed class SftTokenizer
{
    readonly HfTokenizer _tok;
    readonly ChatTemplate? _template;
    readonly bool _assistantOnly, _completionOnly;
    readonly string[] _endTexts;

    public SftTokenizer(HfTokenizer tokenizer, ChatTemplate? template, bool assistantOnlyLoss = true, bool completionOnlyLoss = true,
        IEnumerable<int>? endTokenIds = null)
    {
        _tok = tokenizer; _template = template; _assistantOnly = assistantOnlyLoss; _completionOnly = completionOnlyLoss;
        var ends = (endTokenIds ?? []).Select(id => tokenizer.Decode([id])).ToList();
        if (tokenizer.EosToken != null) ends.Insert(0, tokenizer.EosToken);
        _endTexts = ends.Where(e => e.Length > 0).Distinct().ToArray();
    }

    /// <summary>Earlier assistant turns left untrained because the template rewrites history (last-turn mode).</summary>
    public int UntrainedTurns { get; private set; }

    public TokenizedSample Tokenize(SftExample e)
    {
        if (e.Messages != null) return FromSegments(Segments(e), addSpecial: false);
        if (e.Text != null) return FromSegments([new ChatSegment(e.Text, true), Eos(e.Text)], addSpecial: true);
        return FromSegments([new ChatSegment(e.Prompt!, !_completionOnly), new ChatSegment(e.Completion!, true), Eos(e.Completion!)], addSpecial: true);
    }

    /// <summary>A conversation's context and trained pieces (all trained without assistant_only_loss).</summary>
    public List<ChatSegment> Segments(SftExample e)
    {
        if (_template is null)
            throw new R1SharpException($"{e.Where}: a conversation row needs the model's chat template, and its tokenizer_config.json has none");
        var segments = ChatSegments.Split(_template, e.Messages!, e.FirstTrained, _tok.EosToken, _endTexts, e.Where);
        int assistants = e.Messages!.Skip(e.FirstTrained).Count(m => m.Role == "assistant");
        UntrainedTurns += assistants - segments.Count(s => s.Trained);
        return _assistantOnly ? segments : segments.Select(s => s with { Trained = true }).ToList();
    }

    ChatSegment Eos(string text) =>
        new(_tok.EosToken is { } eos && !text.EndsWith(eos, StringComparison.Ordinal) ? eos : "", true);

    TokenizedSample FromSegments(IReadOnlyList<ChatSegment> segments, bool addSpecial)
    {
        var ids = new List<int>();
        var trained = new List<bool>();
        for (int i = 0; i < segments.Count; i++)
        {
            if (segments[i].Text.Length == 0) continue;
            var piece = _tok.Encode(segments[i].Text, addSpecialTokens: addSpecial && ids.Count == 0);
            ids.AddRange(piece);
            trained.AddRange(Enumerable.Repeat(segments[i].Trained, piece.Count));
        }
        return new TokenizedSample(ids.ToArray(), trained.ToArray());
    }
}
