using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Board;

/// <summary>
/// The runs below the folders the board was given, found by the files runs write (see <see cref="BoardRun.KindOf"/>)
/// and looked for again on every <see cref="Rescan"/>, so a run started after the board appears by itself. Run ids
/// are paths: the given folder's name, then the path below it. Model folders, checkpoints and tokenizers are not
/// descended into; the walk stops at a few thousand folders so that a board pointed at a home directory stays quick.
/// </summary>
public sealed class RunCatalog
{
    const int MaxDepth = 6, MaxFolders = 4000;
    readonly object gate = new();
    readonly List<(string Label, string Path)> roots = new();
    Dictionary<string, BoardRun> runs = new(StringComparer.Ordinal);
    List<string> rootNotes = new();

    public RunCatalog(IEnumerable<string> folders)
    {
        var labels = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in folders)
        {
            string full = Path.GetFullPath(f);
            string label = Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)) is { Length: > 0 } n ? n : "root";
            for (int i = 2; !labels.Add(label); i++) label = $"{Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar))}~{i}";
            roots.Add((label, full));
        }
        Rescan();
    }

    public IReadOnlyList<(string Label, string Path)> Roots => roots;

    public IReadOnlyList<BoardRun> Runs { get { lock (gate) return runs.Values.OrderBy(r => r.Id, NaturalOrder.Instance).ToList(); } }

    public BoardRun Get(string? id)
    {
        if (string.IsNullOrEmpty(id)) throw new BoardRequestException("which run? add ?run=ID (the ids are in /api/runs)");
        lock (gate)
            return runs.TryGetValue(id, out var r) ? r
                : throw new BoardRequestException($"no run {Excerpt.Quote(id, 80)} below {string.Join(", ", roots.Select(x => x.Path))}", 404);
    }

    /// <summary>Walks the roots again; keeps the readers of runs still there. Returns true when the set of runs changed.</summary>
    public bool Rescan()
    {
        var found = new Dictionary<string, BoardRun>(StringComparer.Ordinal);
        var notes = new List<string>();
        Dictionary<string, BoardRun> old;
        lock (gate) old = runs;
        foreach (var (label, root) in roots)
        {
            if (!Directory.Exists(root)) { notes.Add($"{root}: no such folder"); continue; }
            int before = found.Count, visited = 0;
            Walk(root, label, 0, null, found, old, ref visited);
            if (visited >= MaxFolders) notes.Add($"{root}: stopped looking after {MaxFolders:N0} folders; point the board at a folder nearer the runs");
            if (found.Count == before)
                notes.Add($"{root}: no runs found (a run folder holds {string.Join(", ", BoardRun.RunFiles)}, or summary.json with problems.jsonl)");
        }
        bool changed;
        lock (gate)
        {
            changed = !found.Keys.ToHashSet().SetEquals(runs.Keys) || found.Any(kv => runs.TryGetValue(kv.Key, out var r) && r.Kind != kv.Value.Kind && kv.Value.Kind != "train");
            runs = found;
            rootNotes = notes;
        }
        return changed;
    }

    /// <summary>Returns the run made of this folder (itself or, for a group, a new group run) or null.</summary>
    BoardRun? Walk(string dir, string id, int depth, BoardRun? parent, Dictionary<string, BoardRun> found, Dictionary<string, BoardRun> old, ref int visited)
    {
        if (++visited > MaxFolders) return null;
        string? kind = BoardRun.KindOf(dir);
        BoardRun? self = kind is null ? null : Reuse(old, id, dir, kind);
        var children = new List<BoardRun>();
        if (depth < MaxDepth)
        {
            IEnumerable<string> subdirs;
            try { subdirs = Directory.EnumerateDirectories(dir).Where(d => !Skip(d)).OrderBy(d => Path.GetFileName(d), NaturalOrder.Instance).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { subdirs = []; }
            foreach (var sub in subdirs)
            {
                var child = Walk(sub, id + "/" + Path.GetFileName(sub), depth + 1, null, found, old, ref visited);
                if (child is not null) children.Add(child);
            }
        }
        // r1 zero's folder, a pipeline: the runs inside are its stages. A folder given to the board that only holds
        // runs (runs/) is no group, unless it has a report or pipeline.json of its own.
        if (self is null && children.Count > 0
            && (depth > 0 || File.Exists(Path.Combine(dir, BoardRun.Report)) || File.Exists(Path.Combine(dir, BoardRun.PipelineFile))))
            self = Reuse(old, id, dir, "group");
        if (self is null)
        {
            foreach (var c in children) c.ParentId = null;
            return null;
        }
        foreach (var c in children) c.ParentId = self.Id;
        self.Children = children;
        found[self.Id] = self;
        return self;
    }

    static BoardRun Reuse(Dictionary<string, BoardRun> old, string id, string dir, string kind)
    {
        if (old.TryGetValue(id, out var r) && r.Dir == dir && (r.Kind == kind || kind == "train" && r.Kind is "grpo" or "sft")) return r;
        return new BoardRun(id, dir, kind);
    }

    /// <summary>Folders that are never runs: hidden ones, model and tokenizer folders, trainer checkpoints.</summary>
    static bool Skip(string dir)
    {
        string name = Path.GetFileName(dir);
        if (name.StartsWith('.') || name is "node_modules" or "tokenizer" || name.StartsWith("checkpoint-", StringComparison.Ordinal)) return true;
        return File.Exists(Path.Combine(dir, "config.json")) && !File.Exists(Path.Combine(dir, BoardRun.Metrics));
    }

    /// <summary>Root folders and what was (not) found in them, for the page.</summary>
    public JsonObject Describe()
    {
        List<BoardRun> list;
        List<string> notes;
        lock (gate) { list = runs.Values.OrderBy(r => r.Id, NaturalOrder.Instance).ToList(); notes = rootNotes.ToList(); }
        return new JsonObject
        {
            ["roots"] = new JsonArray(roots.Select(r => (JsonNode?)new JsonObject { ["label"] = r.Label, ["path"] = r.Path }).ToArray()),
            ["notes"] = new JsonArray(notes.Select(n => (JsonNode?)n).ToArray()),
            ["runs"] = new JsonArray(list.Select(r => (JsonNode?)r.Describe()).ToArray()),
        };
    }

    /// <summary>A group's stages in order, each with the held-out eval that follows it. The order is pipeline.json's
    /// "stages" list when the folder has one ({"stages": [{"name", "dir", "eval"}]}, dir and eval relative to the
    /// folder), otherwise the folders' names in natural order ("1-sft" before "10-grpo"). A stage's eval is an eval
    /// run inside its folder, or a sibling eval folder named after it ("grpo-eval", "eval-grpo").</summary>
    public JsonObject Pipeline(BoardRun group)
    {
        var stages = new JsonArray();
        var notes = new List<string>();
        var byDir = Runs.ToDictionary(r => Path.GetFullPath(r.Dir), r => r);
        var order = new List<(string Name, BoardRun? Run, BoardRun? Eval)>();
        string spec = Path.Combine(group.Dir, BoardRun.PipelineFile);
        if (File.Exists(spec))
        {
            try
            {
                var node = JsonNode.Parse(File.ReadAllText(spec));
                foreach (var s in node?["stages"]?.AsArray() ?? throw new JsonException("no \"stages\" list"))
                {
                    string name = s?["name"]?.GetValue<string>() ?? s?["dir"]?.GetValue<string>() ?? "stage";
                    BoardRun? Find(string? rel) => rel is null ? null : byDir.GetValueOrDefault(Path.GetFullPath(Path.Combine(group.Dir, rel)));
                    var run = Find(s?["dir"]?.GetValue<string>() ?? name);
                    order.Add((name, run, Find(s?["eval"]?.GetValue<string>()) ?? (run is null ? null : EvalOf(run, group))));
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or IOException or FormatException)
            {
                notes.Add($"{BoardRun.PipelineFile} skipped ({e.Message.Split(". ")[0]}); stages in folder order");
                order.Clear();
            }
        }
        if (order.Count == 0)
        {
            var evalsOfStages = new HashSet<BoardRun>();
            foreach (var c in group.Children)
                if (c.Kind != "eval" && EvalOf(c, group) is { } e && e.ParentId == group.Id) evalsOfStages.Add(e);
            foreach (var c in group.Children.Where(c => !evalsOfStages.Contains(c)))
                order.Add((Path.GetFileName(c.Dir), c, c.Kind == "eval" ? null : EvalOf(c, group)));
        }
        foreach (var (name, run, eval) in order)
        {
            var stage = new JsonObject { ["name"] = name, ["run"] = run?.Id, ["kind"] = run?.Kind, ["eval"] = eval?.Id };
            if (run?.MetricsSeries is { } m)
            {
                stage["rows"] = m.Rows;
                foreach (var key in new[] { "loss", "reward", "accuracy" }) if (m.Last(key) is { } v) stage["last_" + key] = v;
            }
            var scored = eval ?? (run?.Kind == "eval" ? run : null);
            if (scored?.EvalRun is { } er)
            {
                var j = er.ToJson();
                stage["pass1"] = j["pass1"]?.DeepClone();
                stage["pass1_std_err"] = j["pass1_std_err"]?.DeepClone();
                stage["eval_k"] = j["k"]?.DeepClone();
                stage["eval_problems"] = j["problems"]?.DeepClone();
            }
            if (run is null) notes.Add($"stage {name}: its folder has no run yet");
            stages.Add(stage);
        }
        string report = Path.Combine(group.Dir, BoardRun.Report);
        return new JsonObject
        {
            ["id"] = group.Id, ["dir"] = group.Dir, ["stages"] = stages,
            ["report"] = File.Exists(report) ? ReadCapped(report) : null,
            ["notes"] = new JsonArray(notes.Select(n => (JsonNode?)n).ToArray()),
        };
    }

    BoardRun? EvalOf(BoardRun stage, BoardRun group)
    {
        var inside = Runs.FirstOrDefault(r => r.Kind == "eval" && r.Id.StartsWith(stage.Id + "/", StringComparison.Ordinal));
        if (inside is not null) return inside;
        string name = Path.GetFileName(stage.Dir);
        return group.Children.FirstOrDefault(c => c.Kind == "eval" && Path.GetFileName(c.Dir) is var n
            && (n == name + "-eval" || n == name + "_eval" || n == "eval-" + name || n == "eval_" + name));
    }

    /// <summary>A report for the page: at most 256 KB of it.</summary>
    public static string ReadCapped(string path)
    {
        const int Cap = 256 << 10;
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buf = new byte[Math.Min(Cap, s.Length)];
        s.ReadExactly(buf);
        string text = System.Text.Encoding.UTF8.GetString(buf);
        return s.Length > Cap ? text + $"\n\n… ({s.Length:N0} bytes; the first {Cap:N0} shown)" : text;
    }
}

/// <summary>"step-2" before "step-10": digits compare as numbers.</summary>
public sealed class NaturalOrder : IComparer<string>
{
    public static readonly NaturalOrder Instance = new();

    public int Compare(string? a, string? b)
    {
        if (a is null || b is null) return string.CompareOrdinal(a, b);
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (char.IsAsciiDigit(a[i]) && char.IsAsciiDigit(b[j]))
            {
                int si = i, sj = j;
                while (i < a.Length && char.IsAsciiDigit(a[i])) i++;
                while (j < b.Length && char.IsAsciiDigit(b[j])) j++;
                var na = a.AsSpan(si, i - si).TrimStart('0');
                var nb = b.AsSpan(sj, j - sj).TrimStart('0');
                if (na.Length != nb.Length) return na.Length - nb.Length;
                int c = na.SequenceCompareTo(nb);
                if (c != 0) return c;
            }
            else
            {
                int c = a[i].CompareTo(b[j]);
                if (c != 0) return c;
                i++; j++;
            }
        }
        return (a.Length - i) - (b.Length - j);
    }
}
