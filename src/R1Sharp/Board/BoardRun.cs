using System.Text.Json.Nodes;

namespace R1Sharp.Board;

/// <summary>
/// One run folder as the board sees it: which files it has (metrics.jsonl, rollouts.jsonl, samples.jsonl, …), what
/// kind of run that makes it, and the readers over those files, created when first asked for and then refreshed
/// incrementally. A folder that holds no such files but has runs below it (an `r1 zero` folder, a pipeline with a
/// folder per stage) is a group: its stages are the runs inside.
/// </summary>
public sealed class BoardRun
{
    public const string Metrics = "metrics.jsonl", Rollouts = "rollouts.jsonl", Samples = "samples.jsonl", Summary = "summary.json",
        Problems = "problems.jsonl", Report = "report.md", SftData = "sft.jsonl", PipelineFile = "pipeline.json";

    /// <summary>The files whose presence makes a folder a run.</summary>
    public static readonly string[] RunFiles = [Metrics, Rollouts, Samples];

    readonly object gate = new();
    MetricsSeries? metrics;
    RolloutIndex? rollouts;
    EvalRun? eval;

    public string Id { get; }
    public string Dir { get; }
    /// <summary>grpo, sft, train, eval, sample (r1 sample's rejection sampling), or group.</summary>
    public string Kind { get; private set; }
    public string? ParentId { get; set; }
    /// <summary>Replaced whole on each rescan (never changed in place) so a request can walk it while the poller rescans.</summary>
    public IReadOnlyList<BoardRun> Children { get; set; } = [];
    /// <summary>Changes whenever a file of the run changes size or time (the poller compares it).</summary>
    public string Signature { get; private set; } = "";
    public long Version { get; set; }

    public BoardRun(string id, string dir, string kind)
    {
        Id = id; Dir = dir; Kind = kind;
    }

    public bool Has(string file) => File.Exists(Path.Combine(Dir, file));

    /// <summary>The kind from the files alone, or null when the folder is not a run by itself.</summary>
    public static string? KindOf(string dir)
    {
        bool F(string f) => File.Exists(Path.Combine(dir, f));
        if (F(Samples)) return F(SftData) ? "sample" : "eval";
        if (F(Rollouts)) return "grpo";
        if (F(Metrics)) return "train";
        if (F(Summary) && F(Problems)) return "eval";
        return null;
    }

    public MetricsSeries? MetricsSeries
    {
        get
        {
            lock (gate)
            {
                if (metrics is null && Has(Metrics)) metrics = new MetricsSeries(Path.Combine(Dir, Metrics));
                if (metrics is null) return null;
            }
            metrics.Refresh();
            // A trainer's metrics say which trainer: GRPO logs rewards, SFT a loss without them.
            if (Kind == "train")
            {
                var keys = metrics.Keys;
                if (keys.Contains("reward")) Kind = "grpo";
                else if (keys.Contains("loss")) Kind = "sft";
            }
            return metrics;
        }
    }

    public RolloutIndex? RolloutIndex
    {
        get
        {
            lock (gate)
            {
                if (rollouts is null && Has(Rollouts)) rollouts = new RolloutIndex(Path.Combine(Dir, Rollouts));
                if (rollouts is null) return null;
            }
            rollouts.Refresh();
            return rollouts;
        }
    }

    public EvalRun? EvalRun
    {
        get
        {
            lock (gate)
            {
                if (eval is null && (Has(Samples) || Has(Summary) && Has(Problems))) eval = new EvalRun(Dir);
                if (eval is null) return null;
            }
            eval.Refresh();
            return eval;
        }
    }

    /// <summary>Recomputes the signature from the files' sizes and times; true when it changed.</summary>
    public bool Poll()
    {
        var parts = new System.Text.StringBuilder();
        foreach (var f in new[] { Metrics, Rollouts, Samples, Summary, Problems, Report, PipelineFile })
        {
            var info = new FileInfo(Path.Combine(Dir, f));
            if (info.Exists) parts.Append(f).Append(':').Append(info.Length).Append(':').Append(info.LastWriteTimeUtc.Ticks).Append(';');
        }
        string now = parts.ToString();
        if (now == Signature) return false;
        Signature = now;
        return true;
    }

    /// <summary>What the run list shows: id, kind, folder, files, a few last values, and any notes.</summary>
    public JsonObject Describe()
    {
        var o = new JsonObject
        {
            ["id"] = Id, ["kind"] = Kind, ["dir"] = Dir, ["parent"] = ParentId, ["version"] = Version,
            ["files"] = new JsonArray(new[] { Metrics, Rollouts, Samples, Summary, Problems, Report, SftData, PipelineFile }.Where(Has).Select(f => (JsonNode?)f).ToArray()),
            ["children"] = new JsonArray(Children.Select(c => (JsonNode?)c.Id).ToArray()),
        };
        var notes = new List<string>();
        if (MetricsSeries is { } m)
        {
            o["rows"] = m.Rows;
            o["last_step"] = m.Last("step");
            notes.AddRange(m.Notes());
        }
        o["kind"] = Kind; // settled by reading the metrics
        if (Kind is "eval" or "sample" && EvalRun is { } e) notes.AddRange(e.Notes());
        o["notes"] = new JsonArray(notes.Select(n => (JsonNode?)n).ToArray());
        return o;
    }
}
