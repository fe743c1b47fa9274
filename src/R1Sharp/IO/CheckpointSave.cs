using System.Text.RegularExpressions;
using TorchSharp;

namespace R1Sharp.IO;

public static partial class CheckpointIO
{
    /// <summary>
    /// Saves <paramref name="tensors"/> in the Hugging Face layout: one model.safetensors if it fits in
    /// <paramref name="maxShardBytes"/>, else model-0000i-of-0000N.safetensors shards and an index.
    /// Float tensors are converted to <paramref name="dtype"/> one at a time as they are written.
    /// Everything is written under temporary names first and renamed at the end; weight files of the
    /// other layout (or of an older shard count) are removed so the folder never holds two checkpoints.
    /// </summary>
    public static void Save(string folder, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, long maxShardBytes = 5_000_000_000, torch.ScalarType? dtype = null)
    {
        if (maxShardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), "must be positive");
        var list = tensors.ToList();
        // Checked here as well as in the writer: in a sharded save two copies could land in different shards.
        var duplicate = list.GroupBy(kv => kv.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new R1SharpException($"{folder}: tensor '{duplicate.Key}' is given twice");
        SaveItems(folder, list.Select(kv => SafetensorsWriter.Item(kv.Key, kv.Value, dtype)).ToList(), maxShardBytes);
    }

    /// <summary>As <see cref="Save"/> for items that write their own bytes (FP8 weights quantised as they are written).</summary>
    internal static void SaveItems(string folder, IReadOnlyList<SafetensorsItem> list, long maxShardBytes = 5_000_000_000)
    {
        Directory.CreateDirectory(folder);
        var duplicate = list.GroupBy(i => i.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new R1SharpException($"{folder}: tensor '{duplicate.Key}' is given twice");
        var sizes = list.Select(i => i.Bytes).ToList();
        var shards = PlanShards(sizes, maxShardBytes);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };

        if (shards.Count <= 1)
        {
            SafetensorsWriter.WriteItems(Path.Combine(folder, SingleFileName), list, metadata);
            RemoveStale(folder, keep: [SingleFileName]);
            return;
        }

        var names = Enumerable.Range(1, shards.Count).Select(i => $"model-{i:D5}-of-{shards.Count:D5}.safetensors").ToList();
        var index = new CheckpointIndex(sizes.Sum(), new SortedDictionary<string, string>(StringComparer.Ordinal));
        var pending = new List<string>();
        try
        {
            for (int s = 0; s < shards.Count; s++)
            {
                string partial = Path.Combine(folder, names[s] + ".partial");
                pending.Add(partial);
                SafetensorsWriter.WriteItems(partial, shards[s].Select(i => list[i]).ToList(), metadata);
                foreach (int i in shards[s]) index.WeightMap[list[i].Name] = names[s];
            }
            string indexPartial = Path.Combine(folder, CheckpointIndex.FileName + ".partial");
            pending.Add(indexPartial);
            index.Write(indexPartial);

            // A leftover model.safetensors would win over the new index when loading, so it goes first.
            File.Delete(Path.Combine(folder, SingleFileName));
            foreach (string partial in pending) File.Move(partial, partial[..^".partial".Length], overwrite: true);
            pending.Clear();
            RemoveStale(folder, keep: [.. names, CheckpointIndex.FileName]);
        }
        finally
        {
            foreach (string partial in pending) { try { File.Delete(partial); } catch { /* keep the original error */ } }
        }
    }

    /// <summary>
    /// Greedy in the given order, as transformers' split_torch_state_dict_into_shards: a new shard starts when the
    /// next tensor would overflow the current one; a tensor larger than the limit gets a shard of its own.
    /// </summary>
    internal static List<List<int>> PlanShards(IReadOnlyList<long> sizes, long maxShardBytes)
    {
        var shards = new List<List<int>>();
        long current = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            if (shards.Count == 0 || (shards[^1].Count > 0 && current + sizes[i] > maxShardBytes))
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(i);
            current += sizes[i];
        }
        return shards;
    }

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardName();

    /// <summary>Deletes weight files (single, index, shards) that are not part of the checkpoint just written.</summary>
    static void RemoveStale(string folder, IReadOnlyCollection<string> keep)
    {
        foreach (string path in Directory.EnumerateFiles(folder))
        {
            string name = Path.GetFileName(path);
            bool weightFile = name == SingleFileName || name == CheckpointIndex.FileName || ShardName().IsMatch(name);
            if (weightFile && !keep.Contains(name)) File.Delete(path);
        }
    }
}
