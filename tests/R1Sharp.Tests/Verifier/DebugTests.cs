using R1Sharp.Verifier;
using Xunit.Abstractions;
namespace R1Sharp.Tests.Verifier;
public class DebugTests(ITestOutputHelper output)
{
    [Fact]
    public void Debug()
    {
        if (!File.Exists("/tmp/dbg.json")) return;
        var pairs = System.Text.Json.JsonSerializer.Deserialize<string[][]>(File.ReadAllText("/tmp/dbg.json"))!;
        var sb = new System.Text.StringBuilder();
        foreach (var p in pairs)
        {
            var v = MathVerifier.Verify(p[0], p[1]);
            sb.AppendLine($"G[{AnswerExtractor.Extract(p[0])}] P[{AnswerExtractor.Extract(p[1])}] => {v}");
        }
        File.WriteAllText("/tmp/dbg.out", sb.ToString());
    }
}
