namespace R1Sharp.Tasks;

/// <summary>
/// The prompt template of DeepSeek-R1-Zero (DeepSeek-AI 2025, "DeepSeek-R1", Table 1): the model is only told to
/// reason inside &lt;think&gt; and answer inside &lt;answer&gt;; nothing about how to reason.
/// </summary>
public static class R1ZeroTemplate
{
    /// <summary>Table 1's text up to the user turn.</summary>
    public const string Preamble =
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. " +
        "The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. " +
        "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, " +
        "i.e., <think> reasoning process here </think> <answer> answer here </answer>.";

    /// <summary>"{preamble} User: {prompt}. Assistant:" — Table 1 with the question in place of "prompt".</summary>
    public static string Format(string prompt) => $"{Preamble} User: {prompt}. Assistant:";

    /// <summary>The same template in Jinja for tokenizer_config.json, so `r1 generate` renders it from a chat.</summary>
    public static string Jinja =>
        "{%- for message in messages %}{%- if message['role'] == 'user' %}{{ '" + Preamble.Replace("'", "\\'") +
        " User: ' + message['content'] + '. Assistant:' }}{%- elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}" +
        "{%- endif %}{%- endfor %}";
}
