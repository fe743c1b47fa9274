using R1Sharp.Eval;

namespace R1Sharp.Training.Sampling;

/// <summary>
/// A rejection-sampling run as recipe keys (the pipeline's sample stage; `r1 sample`'s options under snake_case names):
/// the teacher (model_name_or_path, or endpoint + model_name), the prompts (dataset_path, as `r1 sample --prompts`
/// reads them), k samples each at DeepSeek's sampling, and the readability filter.
/// </summary>
public sealed class SampleOptions : IRecipe
{
    public string ModelNameOrPath { get; set; } = "";
    public string Endpoint { get; set; } = "";
    public string ModelName { get; set; } = "";
    public string ApiKeyEnv { get; set; } = "";
    public string DatasetPath { get; set; } = "";
    public int K { get; set; } = 4;
    /// <summary>Accepted completions kept per prompt, shortest first (0: all).</summary>
    public int Keep { get; set; }
    public int? Limit { get; set; }
    public double Temperature { get; set; } = 0.6;
    public double TopP { get; set; } = 0.95;
    public int? MaxTokens { get; set; }
    public long Seed { get; set; }
    public string Instruction { get; set; } = EvalSettings.DeepSeekInstruction;
    /// <summary>Open the assistant turn with "&lt;think&gt;\n" when the chat template does not (local teacher).</summary>
    public bool ForceThink { get; set; } = true;
    public string Language { get; set; } = "en";
    public double MinLanguageConsistency { get; set; } = 0.95;
    public double MaxRepetitionRate { get; set; } = 0.2;
    public int RepetitionNGrams { get; set; } = 3;
    public int MaxCompletionTokens { get; set; }
    public int MaxBatch { get; set; } = 8;
    public int Concurrency { get; set; } = 8;

    public void Validate(string source)
    {
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(K >= 1, $"k must be ≥ 1, got {K}");
        Check(Keep >= 0, $"keep must be ≥ 0, got {Keep}");
        Check(Limit is null or >= 1, $"limit must be ≥ 1, got {Limit}");
        Check(MaxTokens is null or >= 1, $"max_tokens must be ≥ 1, got {MaxTokens}");
        Check(MaxBatch >= 1 && Concurrency >= 1, "max_batch and concurrency must be ≥ 1");
        Check(Endpoint.Length == 0 || ModelName.Length > 0, "endpoint needs model_name (the model id the server serves)");
        Check(Endpoint.Length == 0 || ModelNameOrPath.Length == 0, "give model_name_or_path (a local teacher) or endpoint, not both");
    }

    public ReadabilityFilter Filter => new()
    {
        Language = Language, MinLanguageConsistency = MinLanguageConsistency, MaxRepetitionRate = MaxRepetitionRate,
        RepetitionNGrams = RepetitionNGrams, MaxCompletionTokens = MaxCompletionTokens,
    };

    public EvalSettings Settings(string model) => new()
    {
        Model = model, Temperature = (float)Temperature, TopP = (float)TopP, MaxTokens = MaxTokens, Seed = Seed,
        Instruction = Instruction, ForceThink = ForceThink,
    };
}
