using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Verifier;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 verify`: is a predicted answer (or a whole completion) mathematically equal to the gold answer?
/// One pair from the options, or a JSONL file of {gold, prediction} lines with one verdict per line out.</summary>
public static class VerifyCommand
{
    public static Command Create()
    {
        var gold = new Option<string?>("--gold") { Description = "the reference answer" };
        var pred = new Option<string?>("--pred") { Description = "the prediction: an answer or a whole completion" };
        var file = new Option<string?>("--file") { Description = "JSONL with {\"gold\": …, \"prediction\": …} per line; verdicts are printed as JSONL" };
        var json = new Option<bool>("--json") { Description = "print the verdict as JSON" };
        var cmd = new Command("verify", "Decide whether a prediction equals the gold answer (LaTeX or plain text); exit code 0 equal, 3 not equal") { gold, pred, file, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            if (p.GetValue(file) is { } path)
            {
                // Silently ignoring the pair given beside a file would grade something other than the user asked.
                if (p.GetValue(gold) is not null || p.GetValue(pred) is not null)
                    throw new R1SharpException("give either --file or --gold with --pred, not both");
                return VerifyFile(path);
            }
            string g = p.GetValue(gold) ?? throw new R1SharpException("give --gold and --pred, or --file");
            string pr = p.GetValue(pred) ?? throw new R1SharpException("give --gold and --pred, or --file");
            var v = MathVerifier.Verify(g, pr);
            if (p.GetValue(json)) CliCommon.PrintJson(new { gold = g, prediction = pr, equal = v.Equal, reason = v.Reason, extracted = AnswerExtractor.Extract(pr) });
            else Console.WriteLine($"{(v.Equal ? "equal" : "not equal")}: {v.Reason}");
            return v.Equal ? 0 : 3;
        }));
        return cmd;
    }

    static int VerifyFile(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"{path}: file not found");
        int lineNo = 0, equal = 0, total = 0;
        var compact = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new R1SharpException($"{path}:{lineNo}: expected a JSON object"); }
            catch (JsonException e) { throw new R1SharpException($"{path}:{lineNo}: malformed JSON: {e.Message}"); }
            string g = Field(o, "gold", path, lineNo), pr = Field(o, "prediction", path, lineNo);
            var v = MathVerifier.Verify(g, pr);
            total++; if (v.Equal) equal++;
            Console.WriteLine(JsonSerializer.Serialize(new { line = lineNo, equal = v.Equal, reason = v.Reason }, compact));
        }
        Console.Error.WriteLine($"{equal}/{total} equal");
        return 0;
    }

    static string Field(JsonObject o, string key, string path, int line) => o[key] switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonValue v => v.ToJsonString(),
        _ => throw new R1SharpException($"{path}:{line}: missing \"{key}\""),
    };
}
