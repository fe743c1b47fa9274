using TorchSharp;

namespace R1Sharp.IO;

/// <summary>
/// The weights of a Hugging Face model folder: model.safetensors, or
/// model-0000i-of-0000N.safetensors shards with model.safetensors.index.json.
/// </summary>
public static partial class CheckpointIO
{
    public const string SingleFileName = "model.safetensors";

    /// <summary>Weight files of <paramref name="folder"/>, full paths. A single file wins over an index, as in transformers.</summary>
    public static IReadOnlyList<string> WeightFiles(string folder)
    {
        if (!Directory.Exists(folder))
            throw new R1SharpException($"{folder}: checkpoint folder does not exist");
        string single = Path.Combine(folder, SingleFileName);
        if (File.Exists(single)) return [single];
        string indexPath = Path.Combine(folder, CheckpointIndex.FileName);
        if (!File.Exists(indexPath))
            throw new R1SharpException($"{folder}: no weights found: expected {SingleFileName} or {CheckpointIndex.FileName}");
        return ShardPaths(folder, indexPath, CheckpointIndex.Read(indexPath));
    }

    static List<string> ShardPaths(string folder, string indexPath, CheckpointIndex index)
    {
        var paths = new List<string>();
        foreach (string shard in index.Shards)
        {
            string path = Path.Combine(folder, shard);
            if (!File.Exists(path))
                throw new R1SharpException($"{indexPath}: names shard '{shard}', which does not exist in {folder}");
            paths.Add(path);
        }
        if (paths.Count == 0) throw new R1SharpException($"{indexPath}: weight_map is empty");
        return paths;
    }

    /// <summary>
    /// Copies the folder's tensors into <paramref name="parameters"/> in place (no second copy of the model).
    /// Everything is checked before the first byte is copied, so an error leaves the parameters untouched:
    /// each parameter must be present with its shape, and a tensor that is not a parameter is an error
    /// unless <paramref name="ignoreExtra"/> says to skip it. F8_E4M3 tensors with their "_scale_inv" are dequantised
    /// into their parameters (<see cref="Fp8Weights"/>), given the block size of config.json's quantization_config.
    /// </summary>
    public static void LoadInto(string folder, IReadOnlyDictionary<string, torch.Tensor> parameters, Func<string, bool>? ignoreExtra = null, int[]? fp8BlockSize = null)
    {
        var files = WeightFiles(folder);
        var open = new List<SafetensorsFile>();
        try
        {
            foreach (string f in files) open.Add(SafetensorsFile.Open(f));
            var located = Locate(folder, open);
            CheckAgainstIndex(folder, located);
            Check(folder, files, located, parameters, ignoreExtra, fp8BlockSize);

            // File by file in offset order, so the disk reads sequentially.
            using var noGrad = torch.no_grad();
            foreach (var file in open)
                foreach (var entry in file.Entries.Values.OrderBy(e => e.Begin))
                    if (parameters.TryGetValue(entry.Name, out var destination))
                    {
                        if (entry.DType == Fp8Weights.DType) Fp8Weights.ReadInto(file, entry, located[Fp8Weights.ScaleName(entry.Name)], destination, fp8BlockSize!);
                        else file.ReadInto(entry.Name, destination);
                    }
        }
        finally
        {
            foreach (var f in open) f.Dispose();
        }
    }

    static Dictionary<string, SafetensorsFile> Locate(string folder, List<SafetensorsFile> files)
    {
        var located = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var file in files)
            foreach (string name in file.Entries.Keys)
                if (!located.TryAdd(name, file))
                    throw new R1SharpException($"{folder}: tensor '{name}' appears in both {located[name].Path} and {file.Path}");
        return located;
    }

    /// <summary>A sharded checkpoint's index must say where each tensor really is; disagreement means mixed shards.</summary>
    static void CheckAgainstIndex(string folder, Dictionary<string, SafetensorsFile> located)
    {
        string indexPath = Path.Combine(folder, CheckpointIndex.FileName);
        if (File.Exists(Path.Combine(folder, SingleFileName)) || !File.Exists(indexPath)) return;
        var index = CheckpointIndex.Read(indexPath);
        foreach (var (name, shard) in index.WeightMap)
        {
            if (!located.TryGetValue(name, out var file))
                throw new R1SharpException($"{indexPath}: maps tensor '{name}' to {shard}, but no shard contains it");
            if (Path.GetFileName(file.Path) != shard)
                throw new R1SharpException($"{indexPath}: maps tensor '{name}' to {shard}, but it is in {Path.GetFileName(file.Path)}");
        }
        foreach (var (name, file) in located)
            if (!index.WeightMap.ContainsKey(name))
                throw new R1SharpException($"{file.Path}: tensor '{name}' is not listed in {indexPath}");
    }

    static void Check(string folder, IReadOnlyList<string> files, Dictionary<string, SafetensorsFile> located,
        IReadOnlyDictionary<string, torch.Tensor> parameters, Func<string, bool>? ignoreExtra, int[]? fp8BlockSize)
    {
        var missing = parameters.Keys.Where(n => !located.ContainsKey(n)).ToList();
        if (missing.Count > 0)
            throw new R1SharpException(
                $"{folder}: tensor '{missing[0]}' (expected shape {SafetensorsEntry.FormatShape(parameters[missing[0]].shape)}) is missing from "
                + string.Join(", ", files.Select(Path.GetFileName))
                + (missing.Count > 1 ? $" ({missing.Count} parameters missing in all)" : ""));

        foreach (var (name, destination) in parameters)
        {
            var file = located[name];
            var entry = file.Entries[name];
            if (!entry.Shape.SequenceEqual(destination.shape))
                throw new R1SharpException(
                    $"{file.Path}: tensor '{name}': expected shape {SafetensorsEntry.FormatShape(destination.shape)}, found {entry.ShapeText}");
            if (entry.DType == Fp8Weights.DType) Fp8Weights.Check(file, entry, located, destination, fp8BlockSize);
            else file.CheckReadableAs(entry, destination.dtype);
        }

        // An FP8 weight's scale is read with it.
        bool Scale(string n) => n.EndsWith("_scale_inv", StringComparison.Ordinal) && parameters.ContainsKey(n[..^"_scale_inv".Length])
            && located[n[..^"_scale_inv".Length]].Entries[n[..^"_scale_inv".Length]].DType == Fp8Weights.DType;
        var extra = located.Keys.Where(n => !parameters.ContainsKey(n) && !Scale(n) && !(ignoreExtra?.Invoke(n) ?? false)).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            throw new R1SharpException(
                $"{located[extra[0]].Path}: tensor '{extra[0]}' is not a parameter of the model"
                + (extra.Count > 1 ? $" ({extra.Count} unexpected tensors in all)" : "")
                + "; pass ignoreExtra to skip such tensors");
    }
}
