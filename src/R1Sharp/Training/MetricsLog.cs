using System.Text.Json;

namespace R1Sharp.Training;

/// <summary>Per-step metrics as JSON lines (metrics.jsonl), appended and flushed after every step so a crash loses
/// nothing; a resumed run rewrites the file from its checkpoint's copy.</summary>
public sealed class MetricsLog
{
    public string Path { get; }
    public List<Dictionary<string, double>> Rows { get; } = new();

    public MetricsLog(string path) => Path = path;

    public void Append(Dictionary<string, double> row)
    {
        Rows.Add(row);
        File.AppendAllText(Path, Serialize(row) + "\n");
    }

    public void Restore(IEnumerable<Dictionary<string, double>> rows)
    {
        Rows.Clear();
        Rows.AddRange(rows);
        File.WriteAllLines(Path, Rows.Select(Serialize));
    }

    public static string Serialize(Dictionary<string, double> row) =>
        JsonSerializer.Serialize(row.ToDictionary(kv => kv.Key, kv => double.IsFinite(kv.Value) ? (object)Math.Round(kv.Value, 6) : kv.Value.ToString()));

    public static List<Dictionary<string, double>> Read(string path) =>
        File.Exists(path)
            ? File.ReadLines(path).Where(l => l.Length > 0).Select(l =>
                JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(l)!.ToDictionary(kv => kv.Key,
                    kv => kv.Value.ValueKind == JsonValueKind.Number ? kv.Value.GetDouble() : double.Parse(kv.Value.GetString()!))).ToList()
            : new();
}
