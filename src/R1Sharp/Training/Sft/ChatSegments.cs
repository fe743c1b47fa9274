using R1Sharp.Text;

namespace R1Sharp.Training.Sft;

/// <summary>A piece of a rendered training conversation: context the model reads, or tokens it learns to write.</summary>
public sealed record ChatSegment(string Text, bool Trained);

/// <summary>
/// Splits a conversation, rendered through the model's own chat template, into context and the assistant's tokens.
/// The rule is "train on what the model writes at inference": an assistant turn's tokens are what follows the
/// template's generation prompt for that turn, through the end-of-turn token.
/// </summary>
/// <remarks>
/// Spans are found by rendering prefixes of the conversation and comparing the texts (templates carry no generation
/// markers): for assistant turn i, P = render(messages[..i], add_generation_prompt) and F = render(messages[..i+1]).
/// <para><b>History mode</b> (Qwen2.5, Llama 3): when F extends P, the whole conversation R extends every F, and F
/// keeps the turn's reasoning and answer, the template renders history exactly as it renders a fresh reply; R is one
/// sequence with every assistant turn trained (F without P, through the end-of-turn token; whitespace the template
/// puts after that token stays context).</para>
/// <para><b>Last-turn mode</b> (DeepSeek-R1 and R1-Distill, Qwen3 in multi-turn rows): the template rewrites history
/// (drops the reasoning of earlier turns, or of every turn) so no single sequence is both the inference-time context
/// and the reply with its chain of thought. Then only the last trained assistant turn is trained, after the context
/// the model would see at inference (render(messages[..k], add_generation_prompt), with earlier reasoning stripped as
/// the template strips it), and its text is the reply as the model generates it: "&lt;think&gt;…&lt;/think&gt;answer"
/// (minus whatever of it the generation prompt already opened) and the end-of-sequence token. Earlier assistant turns
/// are context in that case, not loss (counted in <see cref="SftTokenizer.UntrainedTurns"/>).</para>
/// </remarks>
public static class ChatSegments
{
    /// <param name="eosText">the end-of-sequence token's text, appended to a reply in last-turn mode</param>
    /// <param name="endTexts">texts of every token that ends a turn (eos and generation_config's eos ids)</param>
    public static List<ChatSegment> Split(ChatTemplate template, IReadOnlyList<ChatMessage> messages, int firstTrained, string? eosText,
        IReadOnlyCollection<string> endTexts, string where)
    {
        var trained = Enumerable.Range(0, messages.Count).Where(i => i >= firstTrained && messages[i].Role == "assistant").ToList();
        if (trained.Count == 0) throw new R1SharpException($"{where}: no assistant message to train on");
        string Render(int count, bool generationPrompt)
        {
            try { return template.Render(messages.Take(count).ToList(), generationPrompt); }
            catch (R1SharpException e) { throw new R1SharpException($"{where}: the chat template failed on this conversation: {e.Message}"); }
        }
        return HistorySegments(trained, messages, Render, endTexts) ?? LastTurnSegments(trained[^1], messages, Render, eosText);
    }

    /// <summary>Null when the template does not render history as it renders a fresh reply.</summary>
    static List<ChatSegment>? HistorySegments(List<int> trained, IReadOnlyList<ChatMessage> messages, Func<int, bool, string> render, IReadOnlyCollection<string> ends)
    {
        string full = render(trained[^1] + 1, false);
        var segments = new List<ChatSegment>();
        int done = 0;
        foreach (int i in trained)
        {
            string prompt = render(i, true), turn = i == trained[^1] ? full : render(i + 1, false);
            if (!turn.StartsWith(prompt, StringComparison.Ordinal) || !full.StartsWith(turn, StringComparison.Ordinal) || prompt.Length < done)
                return null;
            string reply = turn[prompt.Length..];
            if (!KeepsTurn(reply, messages[i])) return null;
            int end = prompt.Length + EndOfTurn(reply, ends);
            if (prompt.Length > done) segments.Add(new ChatSegment(full[done..prompt.Length], false));
            segments.Add(new ChatSegment(full[prompt.Length..end], true));
            done = end;
        }
        return segments;
    }

    static List<ChatSegment> LastTurnSegments(int k, IReadOnlyList<ChatMessage> messages, Func<int, bool, string> render, string? eos)
    {
        string prompt = render(k, true);
        string reply = GeneratedText(messages[k]);
        // The generation prompt may already open the reasoning (DeepSeek-R1's "<｜Assistant｜><think>\n").
        foreach (var open in new[] { ReasoningSplit.Open + "\n", ReasoningSplit.Open })
            if (prompt.EndsWith(open, StringComparison.Ordinal) && reply.StartsWith(open, StringComparison.Ordinal)) { reply = reply[open.Length..]; break; }
        if (eos != null && !reply.EndsWith(eos, StringComparison.Ordinal)) reply += eos;
        return [new ChatSegment(prompt, false), new ChatSegment(reply, true)];
    }

    /// <summary>The reply as a reasoning model writes it: the reasoning in a think block, then the answer.</summary>
    public static string GeneratedText(ChatMessage m) => m.ReasoningContent is null
        ? m.Content
        : $"{ReasoningSplit.Open}\n{m.ReasoningContent.Trim('\n')}\n{ReasoningSplit.Close}\n\n{m.Content.TrimStart('\n')}";

    /// <summary>Does the rendered reply keep the message's reasoning and answer (some templates drop the reasoning)?</summary>
    static bool KeepsTurn(string reply, ChatMessage m)
    {
        string? reasoning = m.ReasoningContent;
        string answer = m.Content;
        int close = answer.IndexOf(ReasoningSplit.Close, StringComparison.Ordinal);
        if (reasoning is null && close >= 0)
        {
            reasoning = answer[..close];
            int open = reasoning.IndexOf(ReasoningSplit.Open, StringComparison.Ordinal);
            if (open >= 0) reasoning = reasoning[(open + ReasoningSplit.Open.Length)..];
            answer = answer[(close + ReasoningSplit.Close.Length)..];
        }
        return (reasoning is null || reply.Contains(reasoning.Trim(), StringComparison.Ordinal)) && reply.Contains(answer.Trim(), StringComparison.Ordinal);
    }

    /// <summary>Length of the reply through its end-of-turn token: whitespace a template writes after that token is
    /// context (the model stops at the token and never writes it).</summary>
    static int EndOfTurn(string reply, IReadOnlyCollection<string> ends)
    {
        string trimmed = reply.TrimEnd();
        return ends.Any(e => e.Length > 0 && trimmed.EndsWith(e, StringComparison.Ordinal)) ? trimmed.Length : reply.Length;
    }
}
