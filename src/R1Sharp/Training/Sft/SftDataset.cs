using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Serialization;

namespace R1Sharp.Training.Sft;

/// <summary>
/// Reads SFT rows (<see cref="SftExample"/>) from JSONL, from Parquet (Hugging Face's format, nested `messages`
/// lists included), or from a folder of shards of either. A malformed row is one error naming the file and the line
/// (JSONL) or row (Parquet, counted from 1 across row groups).
/// </summary>
public static class SftDataset
{
    public static List<SftExample> Load(string path)
    {
        List<SftExample> rows;
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path).Where(IsData).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new R1SharpException($"{path}: a folder dataset must hold .jsonl or .parquet files; found none");
            rows = files.SelectMany(LoadFile).ToList();
        }
        else if (!File.Exists(path)) throw new R1SharpException($"{path}: dataset not found");
        else rows = LoadFile(path);
        if (rows.Count == 0) throw new R1SharpException($"{path}: the dataset is empty");
        return rows;
    }

    static bool IsData(string f) => f.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    static List<SftExample> LoadFile(string path)
    {
        if (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) return LoadParquet(path);
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return LoadJsonl(path);
        throw new R1SharpException($"{path}: unsupported dataset format (expected .jsonl, .parquet or a folder of them)");
    }

    static List<SftExample> LoadJsonl(string path)
    {
        var list = new List<SftExample>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{lineNo}";
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { throw new R1SharpException($"{where}: malformed JSON: {e.Message}"); }
            if (node is not JsonObject row) throw new R1SharpException($"{where}: expected a JSON object, found {node?.GetValueKind().ToString() ?? "null"}");
            list.Add(SftExample.FromJson(row, where));
        }
        return list;
    }

    static List<SftExample> LoadParquet(string path)
    {
        var list = new List<SftExample>();
        long rowNo = 0;
        try
        {
            using var stream = File.OpenRead(path);
            int groups;
            // Untyped reading (lists of structs as lists of dictionaries) comes one row group at a time.
            var reader = ParquetReader.CreateAsync(stream, leaveStreamOpen: true).GetAwaiter().GetResult();
            try { groups = reader.RowGroupCount; } finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            for (int g = 0; g < groups; g++)
            {
                stream.Position = 0;
                var result = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult();
                foreach (var row in result.Data)
                    list.Add(SftExample.FromJson((JsonObject)ToJson(row)!, $"{path}: row {++rowNo}"));
            }
        }
        catch (Exception e) when (e is not R1SharpException)
        {
            throw new R1SharpException($"{path}: not a readable Parquet file ({e.GetType().Name}: {e.Message})");
        }
        return list;
    }

    /// <summary>An untyped Parquet value (dictionaries for structs, lists for repeated fields) as JSON.</summary>
    static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        ReadOnlyMemory<char> m => JsonValue.Create(m.ToString()),
        IDictionary<string, object?> d => new JsonObject(d.Select(kv => KeyValuePair.Create(kv.Key, ToJson(kv.Value)))),
        IDictionary d => new JsonObject(d.Keys.Cast<object>().Select(k => KeyValuePair.Create(k.ToString()!, ToJson(d[k])))),
        IEnumerable e and not byte[] => new JsonArray(e.Cast<object?>().Select(ToJson).ToArray()),
        bool b => JsonValue.Create(b),
        int or long or short or byte or sbyte or uint or ulong or ushort => JsonValue.Create(Convert.ToInt64(value)),
        float or double or decimal => JsonValue.Create(Convert.ToDouble(value)),
        _ => JsonValue.Create(value.ToString()),
    };
}
