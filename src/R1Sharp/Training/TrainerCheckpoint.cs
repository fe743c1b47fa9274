using System.Text.Json;
using R1Sharp.IO;
using R1Sharp.Models;
using TorchSharp;

namespace R1Sharp.Training;

/// <summary>
/// Everything a run needs to continue as if never stopped: the model (HF layout, loadable on its own), AdamW's moments
/// and step count, the step, the data position, and the metrics so far. Random state needs no file of its own: rollout
/// seeds and the data order are functions of (seed, step) and (seed, epoch), both saved. A checkpoint is built under a
/// temporary name and renamed into place, then "latest" is replaced atomically, so a SIGKILL at any moment leaves the
/// previous checkpoint intact.
/// </summary>
public static class TrainerCheckpoint
{
    const string LatestFile = "latest";
    const int Keep = 2;

    public static string Save(string outputDir, TrainerState state, CausalLM model, AdamW optimizer, MetricsLog metrics, string? tokenizerDir)
    {
        string name = $"checkpoint-{state.Step}";
        string final = Path.Combine(outputDir, name);
        string tmp = Path.Combine(outputDir, $".{name}.tmp-{Guid.NewGuid():N}"[..(name.Length + 14)]);
        Directory.CreateDirectory(tmp);
        ModelFolder.Save(model, Path.Combine(tmp, "model"), tokenizerDir);
        var moments = optimizer.ExpAvg.Select(kv => KeyValuePair.Create("exp_avg." + kv.Key, kv.Value))
            .Concat(optimizer.ExpAvgSq.Select(kv => KeyValuePair.Create("exp_avg_sq." + kv.Key, kv.Value)));
        SafetensorsWriter.Write(Path.Combine(tmp, "optimizer.safetensors"), moments,
            new Dictionary<string, string> { ["step"] = optimizer.StepCount.ToString() });
        File.WriteAllText(Path.Combine(tmp, "trainer_state.json"), JsonSerializer.Serialize(state));
        File.WriteAllLines(Path.Combine(tmp, "metrics.jsonl"), metrics.Rows.Select(MetricsLog.Serialize));
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(tmp, final);
        WriteAtomic(Path.Combine(outputDir, LatestFile), name);
        Prune(outputDir, name);
        return final;
    }

    public static TrainerState? LoadLatest(string outputDir, CausalLM model, AdamW optimizer, MetricsLog metrics)
    {
        string latest = Path.Combine(outputDir, LatestFile);
        if (!File.Exists(latest)) return null;
        string dir = Path.Combine(outputDir, File.ReadAllText(latest).Trim());
        if (!Directory.Exists(dir)) throw new R1SharpException($"{latest}: names {dir}, which does not exist");
        CheckpointIO.LoadInto(Path.Combine(dir, "model"), model.StateDict());
        using (var f = SafetensorsFile.Open(Path.Combine(dir, "optimizer.safetensors")))
        {
            foreach (var (n, t) in optimizer.ExpAvg) f.ReadInto("exp_avg." + n, t);
            foreach (var (n, t) in optimizer.ExpAvgSq) f.ReadInto("exp_avg_sq." + n, t);
            optimizer.StepCount = long.Parse(f.Metadata["step"]);
        }
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(dir, "trainer_state.json")))
            ?? throw new R1SharpException($"{dir}/trainer_state.json: empty");
        metrics.Restore(MetricsLog.Read(Path.Combine(dir, "metrics.jsonl")));
        return state;
    }

    static void WriteAtomic(string path, string content)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }

    static void Prune(string outputDir, string current)
    {
        var old = Directory.GetDirectories(outputDir, "checkpoint-*")
            .Select(d => (Dir: d, Step: int.TryParse(Path.GetFileName(d)["checkpoint-".Length..], out int s) ? s : -1))
            .Where(x => x.Step >= 0).OrderByDescending(x => x.Step).Skip(Keep);
        foreach (var (d, _) in old)
            if (Path.GetFileName(d) != current) Directory.Delete(d, true);
        foreach (var d in Directory.GetDirectories(outputDir, ".checkpoint-*")) Directory.Delete(d, true); // leftovers of a kill
    }
}
