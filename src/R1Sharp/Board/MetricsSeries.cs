using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Board;

/// <summary>
/// metrics.jsonl as columns, one per key, read incrementally. Every numeric key is a metric, known or not (an unknown
/// one is drawn like the rest); the trainers write NaN and ±Infinity as strings, which count as numbers with no point
/// drawn. A value that is no number is skipped and named. The x axes are the step (or the row number when a row has
/// none) and the wall time: a row's own "time"/"elapsed" key when the trainer writes one, otherwise the running sum
/// of the row's *_seconds timings.
/// </summary>
public sealed class MetricsSeries
{
    readonly JsonlTail tail;
    readonly object gate = new();
    readonly List<string> keys = new();
    readonly Dictionary<string, List<double?>> columns = new(StringComparer.Ordinal);
    readonly List<double> steps = new(), wall = new();
    readonly HashSet<string> noted = new();
    double wallSum;
    int generation;

    public MetricsSeries(string path) => tail = new JsonlTail(path);

    public string Path => tail.Path;
    public int Generation { get { lock (gate) return tail.Generation; } }
    public int Rows { get { lock (gate) return steps.Count; } }

    /// <summary>Keys that the wall-time axis is taken from, in order of preference, when a row has one.</summary>
    static readonly string[] ClockKeys = ["time", "elapsed", "elapsed_seconds", "wall_time", "wall_seconds"];

    public void Refresh()
    {
        lock (gate)
        {
            tail.Refresh(OnLine);
            if (!tail.Exists || tail.Generation != generation) ClearIfRestarted(); // gone, or rewritten with no lines yet
        }
    }

    void OnLine(int line, long start, ReadOnlySpan<byte> bytes)
    {
        if (tail.Generation != generation) ClearIfRestarted();
        if (tail.ParseObject(line, bytes) is not { } row) return;
        int index = steps.Count;
        double? step = null, clock = null, seconds = null;
        var values = new Dictionary<string, double?>(StringComparer.Ordinal);
        foreach (var p in row.EnumerateObject())
        {
            double? v;
            bool ok = true;
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.Number: v = p.Value.GetDouble(); break;
                case JsonValueKind.String when double.TryParse(p.Value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d): v = double.IsFinite(d) ? d : null; break;
                case JsonValueKind.Null: v = null; break;
                default: v = null; ok = false; break;
            }
            if (!ok)
            {
                if (noted.Add(p.Name)) tail.Skip(line, $"\"{p.Name}\" is {Describe(p.Value)}, not a number: that value is left out (and later ones of this key too)");
                continue;
            }
            values[p.Name] = v;
            if (p.Name == "step") step = v;
            else if (clock is null && ClockKeys.Contains(p.Name)) clock = v;
            if (p.Name.EndsWith("_seconds", StringComparison.Ordinal) && v is { } s && s >= 0) seconds = (seconds ?? 0) + s;
        }
        steps.Add(step ?? index + 1);
        wallSum += seconds ?? 0;
        wall.Add(clock ?? wallSum);
        foreach (var (k, v) in values)
        {
            if (!columns.TryGetValue(k, out var col))
            {
                columns[k] = col = new List<double?>();
                keys.Add(k);
            }
            while (col.Count < index) col.Add(null);
            col.Add(v);
        }
    }

    /// <summary>The tail restarts at line 1 after a rewrite: forget the rows of the old file.</summary>
    void ClearIfRestarted()
    {
        generation = tail.Generation;
        keys.Clear(); columns.Clear(); steps.Clear(); wall.Clear(); noted.Clear();
        wallSum = 0;
    }

    static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the text {Excerpt.Quote(e.GetString()!, 30)}",
        JsonValueKind.True or JsonValueKind.False => "a true/false value",
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        _ => e.ValueKind.ToString(),
    };

    /// <summary>Rows from <paramref name="from"/> on, as columns: {generation, rows, from, step[], wall[], keys[],
    /// columns{key: values[]}, notes[]}. A client that holds rows of another generation asks again from 0.</summary>
    public JsonObject ToJson(int from = 0)
    {
        lock (gate)
        {
            from = Math.Clamp(from, 0, steps.Count);
            var cols = new JsonObject();
            foreach (var k in keys)
            {
                var col = columns[k];
                var arr = new JsonArray();
                for (int i = from; i < steps.Count; i++) arr.Add(i < col.Count && col[i] is { } v ? JsonValue.Create(v) : null); // unrounded: a 1e-10 learning rate is not 0
                cols[k] = arr;
            }
            return new JsonObject
            {
                ["generation"] = tail.Generation,
                ["rows"] = steps.Count,
                ["from"] = from,
                ["step"] = new JsonArray(steps.Skip(from).Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
                ["wall"] = new JsonArray(wall.Skip(from).Select(s => (JsonNode?)JsonValue.Create(Math.Round(s, 3))).ToArray()),
                ["keys"] = new JsonArray(keys.Select(k => (JsonNode?)k).ToArray()),
                ["columns"] = cols,
                ["notes"] = new JsonArray(tail.Notes().Select(n => (JsonNode?)n).ToArray()),
            };
        }
    }

    /// <summary>The last row's value of a key, for run summaries.</summary>
    public double? Last(string key)
    {
        lock (gate)
        {
            if (!columns.TryGetValue(key, out var col)) return null;
            for (int i = col.Count - 1; i >= 0; i--) if (col[i] is { } v) return v;
            return null;
        }
    }

    public IReadOnlyList<string> Keys { get { lock (gate) return keys.ToList(); } }
    public IEnumerable<string> Notes() { lock (gate) return tail.Notes().ToList(); }
}
