using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Training;

/// <summary>
/// Every completion the trainer learned from, as JSON lines (rollouts.jsonl): step, group, prompt, completion,
/// reference, total and per-function rewards, the advantage the loss used, token count, whether it was truncated, the weight version that produced
/// it and where it was generated. Appended after each step's rollout; a resumed run first drops the lines of steps its
/// checkpoint had not reached, so the file never holds samples the final weights did not learn from twice.
/// </summary>
public sealed class RolloutLog(string path)
{
    public string Path { get; } = path;
    bool opened;
    // Prompts and completions stay readable ("<think>", "+") instead of \u003C-escaped.
    static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Starts the file for a run at this step: empty for a fresh run, cut back to the step when resuming.</summary>
    public void Open(int step)
    {
        if (opened) return;
        opened = true;
        if (step == 0 || !File.Exists(Path)) { File.WriteAllText(Path, ""); return; }
        var keep = File.ReadLines(Path).Where(l => l.Length > 0 && StepOf(l) is { } s && s <= step).ToList();
        File.WriteAllLines(Path, keep);
    }

    static int? StepOf(string line)
    {
        try { return (int?)JsonNode.Parse(line)?["step"]; }
        catch (JsonException) { return null; } // a line cut short by a kill
    }

    /// <param name="advantages">each completion's advantage as the loss used it (scale_rewards applied)</param>
    public void Append(int step, Rollout r, IReadOnlyList<double>? advantages = null)
    {
        var lines = new System.Text.StringBuilder();
        for (int i = 0; i < r.Count; i++)
        {
            var c = r[i];
            var rewards = new JsonObject();
            foreach (var (name, score) in c.Rewards) rewards[name] = Math.Round(score, 6);
            lines.Append(new JsonObject
            {
                ["step"] = step, ["group"] = i / r.GroupSize, ["prompt"] = c.Prompt, ["completion"] = c.Text,
                ["reference"] = c.Reference, ["reward"] = Math.Round(c.Reward, 6), ["rewards"] = rewards,
                ["advantage"] = advantages is null ? null : Math.Round(advantages[i], 6),
                ["tokens"] = c.CompletionIds.Length, ["truncated"] = c.Truncated,
                ["weight_version"] = c.WeightVersion, ["source"] = c.Source,
            }.ToJsonString(Readable)).Append('\n');
        }
        File.AppendAllText(Path, lines.ToString());
    }

    public static List<JsonObject> Read(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();
}
