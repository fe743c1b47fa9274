namespace R1Sharp.Training;

/// <summary>PNG curves of a run from its metrics.jsonl rows: reward, accuracy and mean response length against step
/// (GRPO), or the curves a trainer names (SFT's loss).</summary>
public static class RunPlots
{
    public static readonly (string Key, string File, string Title)[] GrpoCurves =
    [
        ("reward", "reward.png", "Mean reward"),
        ("accuracy", "accuracy.png", "Training accuracy (rollouts)"),
        ("completions/mean_length", "response_length.png", "Mean response length (tokens)"),
    ];

    /// <summary>Writes the plots that the metrics have data for; returns their paths. A plotting failure (for example
    /// a missing native Skia library) is reported as no plots, never as a failed run.</summary>
    public static readonly (string Key, string File, string Title)[] SftCurves =
    [
        ("loss", "loss.png", "Training loss (cross-entropy per trained token)"),
        ("eval_loss", "eval_loss.png", "Held-out loss"),
        ("mean_token_accuracy", "token_accuracy.png", "Training token accuracy"),
    ];

    public static List<string> TryWrite(string dir, IReadOnlyList<Dictionary<string, double>> metrics, Action<string>? onError = null) =>
        TryWrite(dir, metrics, GrpoCurves, "GRPO step", onError);

    public static List<string> TryWrite(string dir, IReadOnlyList<Dictionary<string, double>> metrics,
        IReadOnlyList<(string Key, string File, string Title)> curves, string xLabel, Action<string>? onError = null)
    {
        var written = new List<string>();
        if (metrics.Count == 0) return written;
        try
        {
            foreach (var (key, file, title) in curves)
            {
                var rows = metrics.Where(m => m.ContainsKey(key) && double.IsFinite(m[key])).ToList();
                if (rows.Count == 0) continue;
                var plot = new ScottPlot.Plot();
                var line = plot.Add.Scatter(rows.Select(m => m["step"]).ToArray(), rows.Select(m => m[key]).ToArray());
                line.MarkerSize = 3;
                plot.Title(title);
                plot.XLabel(xLabel);
                string path = Path.Combine(dir, file);
                plot.SavePng(path + ".tmp.png", 640, 400);
                File.Move(path + ".tmp.png", path, overwrite: true);
                written.Add(path);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            onError?.Invoke($"plots not written: {e.Message}");
        }
        return written;
    }
}
