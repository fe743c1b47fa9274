using System.Text.Json;
using R1Sharp.Verifier;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Verifier;

/// <summary>Agreement with Math-Verify v0.8.0's own test cases (an independent reference): every
/// `verify` case is decided with the case's options and compared with what Math-Verify expects.</summary>
public class MathVerifyCasesTests(ITestOutputHelper output)
{
    /// <summary>The agreement this verifier truly reaches; the fixture lists each disagreement.</summary>
    const int ExpectedAgreements = 268;

    internal sealed record Case(int Line, string Test, string Gold, string Prediction, bool Expected, VerifyOptions Options);

    internal static List<Case> LoadCases()
    {
        var cases = new List<Case>();
        foreach (var line in File.ReadLines(SharedData.Path("verifier", "math_verify_cases.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            if (r.GetProperty("kind").GetString() != "verify") continue;
            var o = r.GetProperty("options");
            var options = new VerifyOptions
            {
                FloatRounding = o.TryGetProperty("float_rounding", out var fr) ? fr.GetInt32() : 6,
                Strict = !o.TryGetProperty("strict", out var st) || st.GetBoolean(),
                AllowSetRelationComparison = o.TryGetProperty("allow_set_relation_comp", out var asr) && asr.GetBoolean(),
                Budget = TimeSpan.FromSeconds(5),
                Extraction = Targets(o.GetProperty("extraction")),
            };
            cases.Add(new Case(r.GetProperty("line").GetInt32(), r.GetProperty("test").GetString()!, r.GetProperty("gold").GetString()!,
                r.GetProperty("prediction").GetString()!, r.GetProperty("expected").GetBoolean(), options));
        }
        return cases;
    }

    /// <summary>["latex"], ["expr"], ["latex","expr"] or parse()'s defaults (both).</summary>
    static ExtractionTarget Targets(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array) return ExtractionTarget.Latex | ExtractionTarget.Expr;
        ExtractionTarget t = 0;
        foreach (var x in e.EnumerateArray()) t |= x.GetString() == "latex" ? ExtractionTarget.Latex : ExtractionTarget.Expr;
        // Math-Verify's expr-only extraction still reads LaTeX-free answers; ours needs Latex for $…$ spans too.
        return t == ExtractionTarget.Expr ? ExtractionTarget.Latex | ExtractionTarget.Expr : t;
    }

    static string Key(Case c) => $"{c.Test}:{c.Line}:{Short(c.Gold)}|{Short(c.Prediction)}";
    static string Short(string s) => (s.Length > 60 ? s[..30] + "…" + s[^30..] : s).Replace("\n", "\\n");

    [Fact]
    public void AgreesWithMathVerifyOnItsOwnCases()
    {
        var cases = LoadCases();
        Assert.Equal(269, cases.Count);
        var disagreements = new List<string>();
        foreach (var c in cases)
        {
            var v = MathVerifier.Verify(c.Gold, c.Prediction, c.Options);
            if (v.Equal != c.Expected) disagreements.Add($"{Key(c)}\texpected {c.Expected}, got {v.Equal} ({v.Reason})");
        }
        foreach (var d in disagreements) output.WriteLine(d);
        File.WriteAllLines(Path.Combine(Path.GetTempPath(), "r1sharp-verifier-disagreements.txt"), disagreements);
        int agreed = cases.Count - disagreements.Count;
        output.WriteLine($"agreement {agreed}/{cases.Count} = {100.0 * agreed / cases.Count:F1}%");

        // Every disagreement must be listed (with its reason) in the fixture, and nothing else.
        var listed = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "verifier", "math_verify_disagreements.tsv"))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split('\t')[0]).ToHashSet();
        var actual = disagreements.Select(d => d.Split('\t')[0]).ToHashSet();
        Assert.Empty(actual.Except(listed));
        Assert.Empty(listed.Except(actual));
        Assert.Equal(ExpectedAgreements, agreed);
    }
}
