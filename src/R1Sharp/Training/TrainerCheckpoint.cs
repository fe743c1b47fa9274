using System.Text.Json;
using R1Sharp.IO;
using R1Sharp.Models;
using TorchSharp;

namespace R1Sharp.Training;

/// <summary>
/// Everything a run needs to continue as if never stopped: the model (HF layout, loadable on its own), AdamW's moments
/// and step count, the step, the data position, and the metrics so far. Random state needs no file of its own: rollout
/// seeds and the data order are functions of (seed, step) and (seed, epoch), both saved.
/// </summary>
/// <remarks>
/// Surviving SIGKILL at any moment: a checkpoint is built under a hidden temporary name (".checkpoint-N.tmp-…") and
/// renamed into place; a checkpoint folder is only ever removed by renaming it to a hidden name first and deleting it
/// after. So every "checkpoint-N" folder is complete. Resuming takes the one "latest" names (replaced atomically after
/// the rename; a kill in between leaves it naming the previous, complete checkpoint, and the resumed run redoes one
/// step identically), or the highest N when that folder is gone. Hidden leftovers of a kill are ignored and cleaned
/// up by the next save.
/// </remarks>
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
        // With adapters (use_peft) only they train: the checkpoint is the adapter in PEFT's layout, not the frozen base.
        if (model.Lora is { } lora) lora.Save(Path.Combine(tmp, "adapter"), baseModel: tokenizerDir);
        else ModelFolder.Save(model, Path.Combine(tmp, "model"), tokenizerDir);
        var moments = optimizer.ExpAvg.Select(kv => KeyValuePair.Create("exp_avg." + kv.Key, kv.Value))
            .Concat(optimizer.ExpAvgSq.Select(kv => KeyValuePair.Create("exp_avg_sq." + kv.Key, kv.Value)));
        SafetensorsWriter.Write(Path.Combine(tmp, "optimizer.safetensors"), moments,
            new Dictionary<string, string> { ["step"] = optimizer.StepCount.ToString() });
        File.WriteAllText(Path.Combine(tmp, "trainer_state.json"), JsonSerializer.Serialize(state));
        File.WriteAllLines(Path.Combine(tmp, "metrics.jsonl"), metrics.Rows.Select(MetricsLog.Serialize));
        // Saving a step again (a run resumed at its last step saves its final checkpoint once more): the old folder
        // goes aside first, so "checkpoint-N" is never half deleted.
        string? old = Directory.Exists(final) ? MoveAside(final) : null;
        Directory.Move(tmp, final);
        if (old != null) Directory.Delete(old, true);
        WriteAtomic(Path.Combine(outputDir, LatestFile), name);
        Prune(outputDir, name);
        return final;
    }

    /// <summary>The checkpoint to resume from: the one "latest" names, or, when that folder is gone (a kill while it
    /// was being replaced), the highest-numbered one; null when there is none.</summary>
    public static string? FindLatest(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return null;
        // "latest" first: a fresh run in a folder that holds an older run's higher-numbered checkpoints is the one to resume.
        string latest = Path.Combine(outputDir, LatestFile);
        if (File.Exists(latest) && File.ReadAllText(latest).Trim() is { Length: > 0 } name && name.StartsWith("checkpoint-")
            && Directory.Exists(Path.Combine(outputDir, name)))
            return Path.Combine(outputDir, name);
        return Checkpoints(outputDir).OrderByDescending(x => x.Step).Select(x => x.Dir).FirstOrDefault();
    }

    public static TrainerState? LoadLatest(string outputDir, CausalLM model, AdamW optimizer, MetricsLog metrics)
    {
        string? dir = FindLatest(outputDir);
        if (dir is null) return null;
        if (model.Lora is { } lora)
        {
            if (!Directory.Exists(Path.Combine(dir, "adapter"))) throw new R1SharpException($"{dir}: a full fine-tuning checkpoint (no adapter/); resume it without use_peft");
            lora.LoadInto(Path.Combine(dir, "adapter"));
        }
        else
        {
            if (!Directory.Exists(Path.Combine(dir, "model"))) throw new R1SharpException($"{dir}: an adapter checkpoint (no model/); resume it with use_peft: true");
            CheckpointIO.LoadInto(Path.Combine(dir, "model"), model.StateDict());
        }
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

    static IEnumerable<(string Dir, int Step)> Checkpoints(string outputDir) =>
        Directory.GetDirectories(outputDir, "checkpoint-*")
            .Select(d => (Dir: d, Step: int.TryParse(Path.GetFileName(d)["checkpoint-".Length..], out int s) ? s : -1))
            .Where(x => x.Step >= 0);

    /// <summary>Renames a checkpoint to a hidden name, which resuming ignores, so that deleting it can be interrupted.</summary>
    static string MoveAside(string dir)
    {
        string aside = Path.Combine(Path.GetDirectoryName(dir)!, $".{Path.GetFileName(dir)}.old-{Guid.NewGuid():N}"[..^24]);
        Directory.Move(dir, aside);
        return aside;
    }

    static void Prune(string outputDir, string current)
    {
        var old = Checkpoints(outputDir).OrderByDescending(x => x.Step).Skip(Keep).Select(x => x.Dir)
            .Where(d => Path.GetFileName(d) != current).Select(MoveAside).ToList();
        // Hidden folders: the ones just moved aside, and temporary or half-deleted ones left by a kill.
        foreach (var d in Directory.GetDirectories(outputDir, ".checkpoint-*")) Directory.Delete(d, true);
    }
}
