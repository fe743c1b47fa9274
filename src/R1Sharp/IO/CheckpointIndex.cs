using System.Text.Json;

namespace R1Sharp.IO;

/// <summary>
/// model.safetensors.index.json of a sharded Hugging Face checkpoint:
/// {"metadata": {"total_size": bytes}, "weight_map": {tensor name: shard file name}}.
/// </summary>
internal sealed record CheckpointIndex(long TotalSize, SortedDictionary<string, string> WeightMap)
{
    public const string FileName = "model.safetensors.index.json";

    /// <summary>The shard files, in name order (model-00001-of-0000N first).</summary>
    public IReadOnlyList<string> Shards => WeightMap.Values.Distinct().Order(StringComparer.Ordinal).ToList();

    public static CheckpointIndex Read(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new R1SharpException($"{path}: expected an object with a \"weight_map\" object");
            long total = root.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object
                && meta.TryGetProperty("total_size", out var ts) && ts.TryGetInt64(out long t) ? t : -1;
            var weights = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var kv in map.EnumerateObject())
            {
                if (kv.Value.ValueKind != JsonValueKind.String)
                    throw new R1SharpException($"{path}: weight_map entry '{kv.Name}' must name a shard file, found {kv.Value.ValueKind}");
                string shard = kv.Value.GetString()!;
                // Shards live beside the index; a path elsewhere is a corrupt or hostile index.
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard))
                    throw new R1SharpException($"{path}: weight_map entry '{kv.Name}' names '{shard}', which is not a file name in this folder");
                weights[kv.Name] = shard;
            }
            return new CheckpointIndex(total, weights);
        }
        catch (JsonException e) { throw new R1SharpException($"{path}: bad JSON: {e.Message}", e); }
        catch (IOException e) { throw new R1SharpException($"{path}: cannot read: {e.Message}", e); }
    }

    /// <summary>Writes the index as transformers does (json.dumps(indent=2, sort_keys=True) plus a newline).</summary>
    public void Write(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions
               {
                   Indented = true,
                   Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
               }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", TotalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var kv in WeightMap) json.WriteString(kv.Key, kv.Value);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
        stream.Flush(flushToDisk: true);
    }
}
