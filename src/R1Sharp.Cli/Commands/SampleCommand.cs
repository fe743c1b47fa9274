using System.CommandLine;
using R1Sharp.Code;
using R1Sharp.Eval;
using R1Sharp.Training.Sampling;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 sample`: rejection sampling into an SFT dataset from a model folder or an OpenAI-compatible endpoint;
/// resumable (samples.jsonl is appended as they arrive), sft.jsonl and summary.json in --out.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var prompts = new Option<string>("--prompts") { Description = "JSONL of problems with reference answers (problem or question, answer; id, subject optional)", Required = true };
        var model = new Option<string?>("--model") { Description = "Hugging Face model folder or GGUF file to sample locally" };
        var endpoint = new Option<string?>("--endpoint") { Description = "OpenAI-compatible base URL (DeepSeek's API, vLLM, SGLang, r1 serve)" };
        var modelName = new Option<string?>("--model-name") { Description = "model name the endpoint serves" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the endpoint's API key" };
        var k = new Option<int>("--k") { Description = "completions per prompt", DefaultValueFactory = _ => 4 };
        var keep = new Option<int>("--keep") { Description = "keep at most this many accepted completions per prompt, shortest first (0: all)", DefaultValueFactory = _ => 0 };
        var temperature = new Option<float>("--temperature") { Description = "sampling temperature (DeepSeek: 0.6)", DefaultValueFactory = _ => 0.6f };
        var topP = new Option<float>("--top-p") { Description = "nucleus mass (DeepSeek: 0.95)", DefaultValueFactory = _ => 0.95f };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "completion tokens at most per sample (default: what the context leaves after the prompt)" };
        var requestTimeout = new Option<double>("--request-timeout")
            { Description = "endpoint backend: seconds one request may take before it fails", DefaultValueFactory = _ => EndpointPolicy.DefaultRequestTimeout.TotalSeconds };
        var seed = new Option<long>("--seed") { Description = "base seed; sample j of prompt p uses a seed derived from it", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "sample only the first N prompts" };
        var instruction = new Option<string>("--instruction") { Description = "appended to each problem after a newline (\"\" for none)", DefaultValueFactory = _ => EvalSettings.DeepSeekInstruction };
        var language = new Option<string>("--language") { Description = "language of the chain of thought", DefaultValueFactory = _ => "en" };
        var minLanguage = new Option<double>("--min-language-consistency") { Description = "least share of CoT words in --language", DefaultValueFactory = _ => 0.95 };
        var maxRepetition = new Option<double>("--max-repetition") { Description = "highest word n-gram repetition rate (1 − distinct/total)", DefaultValueFactory = _ => 0.2 };
        var ngrams = new Option<int>("--repetition-n-grams") { Description = "n of the repetition rate's n-grams", DefaultValueFactory = _ => 3 };
        var maxLength = new Option<int>("--max-completion-tokens") { Description = "reject completions longer than this (0: only --max-tokens)", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "output folder (default: sample-MODEL); an existing one resumes" };
        var json = new Option<bool>("--json") { Description = "print the summary as JSON on stdout" };
        var noThink = new Option<bool>("--no-think-prefix") { Description = "local backend: do not open the assistant turn with <think> when the template does not" };
        var maxBatch = new Option<int>("--max-batch") { Description = "local backend: sequences generated together", DefaultValueFactory = _ => 8 };
        var concurrency = new Option<int>("--concurrency") { Description = "endpoint backend: requests in flight", DefaultValueFactory = _ => 8 };
        var sandbox = new SandboxArgs();
        var device = CliCommon.Device();
        var dtype = CliCommon.DType();
        var cmd = new Command("sample", "Rejection sampling: k completions per prompt, keep the correct and readable ones as an SFT dataset (messages format)")
        {
            prompts, model, endpoint, modelName, apiKeyEnv, k, keep, temperature, topP, maxTokens, seed, limit, instruction, language, minLanguage,
            maxRepetition, ngrams, maxLength, output, json, noThink, maxBatch, concurrency, device, dtype, requestTimeout };
        sandbox.AddTo(cmd);
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            CliCommon.CheckFinite(p.GetValue(temperature), "--temperature");
            CliCommon.CheckFinite(p.GetValue(topP), "--top-p");
            var all = Benchmark.Parse(p.GetValue(prompts)!);
            if (p.GetValue(limit) is { } n && n < 1) throw new R1SharpException($"--limit must be ≥ 1, got {n}");
            if (p.GetValue(keep) < 0) throw new R1SharpException($"--keep must be ≥ 0, got {p.GetValue(keep)}");
            var problems = p.GetValue(limit) is { } lim ? all.Take(lim).ToList() : all;
            // Code prompts are graded by running their tests: only passing programs are kept.
            using var code = problems.Any(x => x.Code is not null) ? sandbox.Create(p) : null;
            var filter = new ReadabilityFilter
            {
                Language = p.GetValue(language)!, MinLanguageConsistency = p.GetValue(minLanguage), MaxRepetitionRate = p.GetValue(maxRepetition),
                RepetitionNGrams = p.GetValue(ngrams), MaxCompletionTokens = p.GetValue(maxLength),
            };
            filter.Validate();
            Rewards.LanguageConsistencyReward.Create(filter.Language); // an unknown language fails before any sampling
            using var backend = EvalCommand.CreateBackend(p.GetValue(model), p.GetValue(endpoint), p.GetValue(modelName), p.GetValue(apiKeyEnv),
                p.GetValue(maxBatch), p.GetValue(concurrency), p.GetValue(device), p.GetValue(dtype),
                new EndpointPolicy { RequestTimeout = EndpointPolicy.Seconds(p.GetValue(requestTimeout), "--request-timeout") });
            var settings = new EvalSettings
            {
                Model = backend.ModelName, Temperature = p.GetValue(temperature), TopP = p.GetValue(topP), MaxTokens = p.GetValue(maxTokens),
                Seed = p.GetValue(seed), ForceThink = !p.GetValue(noThink),
                // Code prompts ask for a fenced block unless an instruction is given.
                Instruction = code is not null && p.GetResult(instruction) is null or { Implicit: true }
                    ? EvalSettings.CodeInstruction(problems.First(x => x.Code is not null).Code!.Language) : p.GetValue(instruction)!,
            };
            settings.Sampling().Validate();
            string outDir = p.GetValue(output) ?? $"sample-{backend.ModelName}";
            var summary = RunWithProgress(problems, p.GetValue(k), settings, backend, filter, p.GetValue(keep), outDir, code);
            if (summary is null) return 130;
            if (p.GetValue(json)) CliCommon.PrintJson(summary);
            else
            {
                Console.WriteLine($"{summary.Samples} samples of {summary.Prompts} prompts: {summary.Accepted} accepted ({100 * summary.AcceptanceRate:F1}%), " +
                    $"{summary.Kept} kept for {summary.PromptsWithKept} prompts; rejected: " +
                    string.Join(", ", summary.Verdicts.Where(v => v.Key != "accepted").Select(v => $"{v.Key} {v.Value}")));
                Console.WriteLine($"dataset: {Path.Combine(outDir, RejectionSampling.DatasetFile)}");
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>The sampling run under a progress bar, Ctrl-C stopping it cleanly (null then: the samples so far are kept
    /// and a rerun resumes). Shared by `r1 sample` and `r1 distill`.</summary>
    internal static SamplingSummary? RunWithProgress(IReadOnlyList<BenchProblem> problems, int k, EvalSettings settings, IEvalBackend backend,
        ReadabilityFilter filter, int keep, string outDir, ICodeExecutor? code = null)
    {
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCtrlC = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCtrlC;
        try
        {
            return EvalCommand.WithProgress("sample", backend is EndpointBackend eb ? eb.Waiting : null,
                progress => RejectionSampling.RunAsync(problems, k, settings, backend, filter, keep, outDir, progress, cancel.Token, code));
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"interrupted: the samples so far are in {Path.Combine(outDir, RejectionSampling.SamplesFile)}; run the same command again to resume");
            return null;
        }
        finally { Console.CancelKeyPress -= onCtrlC; }
    }
}
