using System.Security.Cryptography;
using System.Text;
using R1Sharp.Generation;

namespace R1Sharp.Eval;

/// <summary>
/// Everything that decides what a sample is: the model, sampling and the prompt. Two runs with equal settings may
/// share samples; their <see cref="Key"/> is part of every result line, so a resume never mixes samples of different
/// settings. The number of samples k is deliberately not part of it: sample j is the same sample whether k is 4 or 8,
/// so raising k later only pays for the new samples.
/// </summary>
public sealed record EvalSettings
{
    /// <summary>DeepSeek-R1's evaluation instruction, appended to each problem after a newline.</summary>
    public const string DeepSeekInstruction = "Please reason step by step, and put your final answer within \\boxed{}.";

    /// <summary>The model folder's name or the endpoint's model name.</summary>
    public required string Model { get; init; }
    public float Temperature { get; init; } = 0.6f;
    public float TopP { get; init; } = 0.95f;
    /// <summary>Completion tokens at most; null: whatever the context leaves after the prompt (the server's default
    /// for an endpoint).</summary>
    public int? MaxTokens { get; init; }
    /// <summary>Sample j of problem number p samples with seed Seed + p·SeedStride + j (local backend, and endpoints
    /// that honour the seed field), so a redone or resumed sample is the one it would have been.</summary>
    public long Seed { get; init; }
    public string Instruction { get; init; } = DeepSeekInstruction;
    /// <summary>Open the assistant turn with "&lt;think&gt;\n" when the chat template does not (local backend only:
    /// an endpoint renders its own template).</summary>
    public bool ForceThink { get; init; } = true;

    /// <summary>Base-model style: the prompt is the code problem's own prompt (or the math problem) as plain text, with no
    /// chat template, instruction or &lt;think&gt;, and the completion continues it up to the problem's stop tokens (the
    /// Codex protocol for HumanEval). Off: chat models answering in a fenced block.</summary>
    public bool Completion { get; init; }

    /// <summary>The instruction for code problems (the chat protocol): reasoning, then one fenced block.</summary>
    public static string CodeInstruction(string language)
    {
        string fence = language == Code.CodeLanguage.CSharp ? "csharp" : language;
        return $"Please reason step by step, and put your complete solution in a single ```{fence} code block at the end of your answer.";
    }

    public const long SeedStride = 1_000_003;

    public string UserTurn(string problem) => Instruction.Length == 0 ? problem : problem + "\n" + Instruction;

    public long SeedFor(int problemIndex, int sample) => Seed + problemIndex * SeedStride + sample;

    /// <param name="fits">the completion budget when <see cref="MaxTokens"/> is not set: what the context leaves</param>
    public SamplingOptions Sampling(int fits = 1) => new() { Temperature = Temperature, TopP = TopP, MaxTokens = MaxTokens ?? fits, Seed = Seed };

    /// <summary>A short stable hash of the settings (12 hex digits of SHA-256 over a canonical text).</summary>
    public string Key
    {
        get
        {
            string canonical = string.Join("\u001f", Model, Temperature.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                TopP.ToString("R", System.Globalization.CultureInfo.InvariantCulture), MaxTokens, Seed, Instruction, ForceThink)
                + (Completion ? "\u001fcompletion" : ""); // appended only when on, so keys of earlier runs stay valid
            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))[..12];
        }
    }
}
