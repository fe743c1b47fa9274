using System.Collections.Concurrent;
using R1Sharp.Code;

namespace R1Sharp.Rewards;

/// <summary>
/// Code rewards (open-r1's code_reward and code_format_reward; DeepSeek-R1 §2.2.2 rewards code by running tests).
/// The program is the last fenced code block of the answer (after &lt;/think&gt;); the reference is the problem's tests as
/// JSON in any format <see cref="CodeRows"/> reads (open-r1's verification_info {language, test_cases}, human-eval's
/// test + entry_point, input_output). Programs run on an executor (the local sandbox or a service), a batch of
/// completions at once with the executor bounding how many run together.
/// <list type="bullet">
/// <item>code_accuracy: 1 when every test passes, else 0 (stops at the first failing test);</item>
/// <item>code_pass_rate: the share of test cases passed (open-r1's code_reward);</item>
/// <item>code_format: 1 when the reasoning is closed and the answer holds exactly one fenced block of the expected language.</item>
/// </list>
/// </summary>
public static class CodeRewards
{
    static readonly ConcurrentDictionary<string, CodeSpec> specs = new();

    static CodeSpec Spec(string reference)
    {
        if (specs.TryGetValue(reference, out var known)) return known;
        var spec = CodeRows.FromReference(reference);
        if (specs.Count > 4096) specs.Clear();
        specs[reference] = spec;
        return spec;
    }

    public static RewardFunction Accuracy(ICodeExecutor executor, double weight = 1.0) => Create("code_accuracy", executor, passRate: false, weight);

    public static RewardFunction PassRate(ICodeExecutor executor, double weight = 1.0) => Create("code_pass_rate", executor, passRate: true, weight);

    static RewardFunction Create(string name, ICodeExecutor executor, bool passRate, double weight)
    {
        async Task<double> One(string completion, string reference)
        {
            var j = await CodeJudge.JudgeAsync(executor, Spec(reference), completion, chat: true, allCases: passRate).ConfigureAwait(false);
            return passRate ? j.PassRate : j.AllPassed ? 1.0 : 0.0;
        }
        return new RewardFunction(name, (_, completion, reference) => One(completion, reference).GetAwaiter().GetResult(), weight)
        {
            // The whole batch at once: the executor runs as many programs together as it has slots.
            Batch = (_, completions, references) => Task.WhenAll(completions.Select((c, i) => One(c, references[i]))).GetAwaiter().GetResult(),
        };
    }

    public static RewardFunction Format(string language, double weight = 1.0)
    {
        var lang = new CodeLanguages().Find(language) ?? new CodeLanguage(CodeRows.Canonical(language), [CodeRows.Canonical(language)], "main", null);
        return new RewardFunction("code_format", (_, completion, _) => CodeExtraction.IsWellFormatted(completion, lang) ? 1.0 : 0.0, weight);
    }
}
