using System.Text.Json;
using R1Sharp.Verifier;

namespace R1Sharp.Tests.Verifier;

/// <summary>The eval harness compares references in each benchmark's own format with boxed model answers:
/// GSM8K's "… #### 18", AIME's zero-padded "025", AMC's floats such as 27.0.</summary>
public class BenchmarkAnswersTests
{
    static IEnumerable<JsonElement> Records(string file) =>
        File.ReadLines(SharedData.Path("benchmarks", file)).Select(l => JsonDocument.Parse(l).RootElement);

    static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();

    [Fact]
    public void Gsm8kReferencesEqualTheirFinalNumberAndNotItsNeighbour()
    {
        int n = 0;
        foreach (var r in Records("gsm8k.jsonl"))
        {
            var reference = r.GetProperty("answer").GetString()!;
            var number = reference[(reference.LastIndexOf("####") + 4)..].Trim().Replace(",", "");
            Assert.True(MathVerifier.Verify(reference, $"So she makes \\boxed{{{number}}} dollars.").Equal, reference);
            var other = (decimal.Parse(number, System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.False(MathVerifier.Verify(reference, $"\\boxed{{{other}}}").Equal, reference);
            n++;
        }
        Assert.Equal(1319, n);
    }

    [Theory]
    [InlineData("aime24.jsonl", 30)]
    [InlineData("aime25.jsonl", 30)]
    [InlineData("amc23.jsonl", 40)]
    public void IntegerAnswersEqualTheirBoxedIntegers(string file, int count)
    {
        int n = 0;
        foreach (var r in Records(file))
        {
            var gold = Text(r.GetProperty("answer"));
            var value = decimal.Parse(gold, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(MathVerifier.Verify(gold, $"The answer is $\\boxed{{{value:0.##}}}$").Equal, gold);
            Assert.False(MathVerifier.Verify(gold, $"\\boxed{{{value + 1:0.##}}}").Equal, gold);
            n++;
        }
        Assert.Equal(count, n);
    }
}
