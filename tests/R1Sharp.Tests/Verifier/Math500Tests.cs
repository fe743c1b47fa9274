using System.Text.Json;
using R1Sharp.Verifier;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Verifier;

/// <summary>MATH-500 as an independent reference: each gold answer must equal the last \boxed{} of its
/// own solution, and must not equal the answers of other problems that differ in value.</summary>
public class Math500Tests(ITestOutputHelper output)
{
    internal sealed record Problem(string Answer, string Solution, string Id);

    internal static List<Problem> Load() => [.. File.ReadLines(SharedData.Path("benchmarks", "math500.jsonl")).Select(l =>
    {
        using var d = JsonDocument.Parse(l);
        var r = d.RootElement;
        return new Problem(r.GetProperty("answer").GetString()!, r.GetProperty("solution").GetString()!, r.GetProperty("unique_id").GetString()!);
    })];

    static readonly VerifyOptions Generous = new() { Budget = TimeSpan.FromSeconds(5) };

    [Fact]
    public void EveryAnswerEqualsTheBoxOfItsOwnSolution()
    {
        var problems = Load();
        var failures = problems.Select(p => (p, v: MathVerifier.Verify(p.Answer, p.Solution, Generous)))
            .Where(x => !x.v.Equal).Select(x => $"{x.p.Id}: {x.p.Answer} vs [{AnswerExtractor.Extract(x.p.Solution)}] ({x.v.Reason})").ToList();
        foreach (var f in failures) output.WriteLine(f);
        Assert.Equal(500, problems.Count);
        Assert.Empty(failures);
    }

    [Fact]
    public void VerdictsAreTheSameWhenRunInParallel()
    {
        // Pure function, no shared mutable state: the eval harness and the trainer call it from many threads.
        var problems = Load();
        var answers = problems.Select(p => p.Answer).ToArray();
        var serial = answers.Select((a, i) => MathVerifier.Verify(a, answers[(i + 7) % answers.Length], Generous).Equal).ToArray();
        var parallel = new bool[answers.Length];
        Parallel.For(0, answers.Length, i => parallel[i] = MathVerifier.Verify(answers[i], answers[(i + 7) % answers.Length], Generous).Equal);
        Assert.Equal(serial, parallel);
    }

    /// <summary>Pairs of different problems' answers that really are the same value, checked by hand:
    /// the same number written two ways, or a value with and without a unit (units, degrees and \$ are
    /// ignored by design, see Verifier/README.md), or "x=5" which answers 5.</summary>
    static readonly (string, string)[] KnownTrueEqualities =
    [
        ("\\frac{1}{4}", "\\frac14"), ("\\frac14", "\\frac{1}{4}"),
        ("120^\\circ", "120"), ("30^\\circ", "30"), ("15", "15\\mbox{ cm}^2"), ("15\\mbox{ cm}^2", "15"),
        ("36", "\\$36"), ("5", "x=5"), ("x=5", "5"),
    ];

    [Fact]
    public void NoFalsePositivesAgainstOtherProblemsAnswers()
    {
        var problems = Load();
        // Each answer against 40 others (a fixed stride walk, so every pair kind appears), skipping
        // pairs whose normalised strings are identical: those are the same value by construction.
        var equalPairs = new List<string>();
        int compared = 0;
        for (int i = 0; i < problems.Count; i++)
        {
            for (int k = 1; k <= 40; k++)
            {
                var j = (i + k * 12) % problems.Count;
                if (j == i) continue;
                var (a, b) = (problems[i].Answer, problems[j].Answer);
                if (Canon(a) == Canon(b)) continue;
                compared++;
                if (MathVerifier.Verify(a, b, Generous).Equal) equalPairs.Add($"{a}  ==  {b}");
            }
        }
        var distinct = equalPairs.Distinct().OrderBy(x => x).ToList();
        output.WriteLine($"{compared} cross pairs, {distinct.Count} judged equal:");
        foreach (var p in distinct) output.WriteLine(p);
        File.WriteAllLines(Path.Combine(Path.GetTempPath(), "r1sharp-math500-cross-equal.txt"), distinct);
        var allowed = KnownTrueEqualities.Select(p => $"{p.Item1}  ==  {p.Item2}").ToHashSet();
        Assert.Empty(distinct.Where(p => !allowed.Contains(p)).ToList());
    }

    static string Canon(string s) => new([.. s.Where(c => !char.IsWhiteSpace(c))]);
}
