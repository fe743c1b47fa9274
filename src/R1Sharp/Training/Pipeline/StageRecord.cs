using System.Text.Json;

namespace R1Sharp.Training.Pipeline;

/// <summary>The held-out evaluation of a stage's model (DeepSeek's pass@1 over k samples, its standard error, cons@k).</summary>
public sealed record StageEval(double Pass1, double Pass1StdErr, double ConsAtK, double MeanTokens, int Problems, int K, double Seconds);

/// <summary>
/// A finished stage, as stage.json in its folder (written atomically, last): what it produced (paths relative to the
/// run folder), how long its training steps took (the budget a later stage may be given), its held-out evaluation,
/// and the fingerprint of the recipe text it ran from. Its presence is what makes a resumed pipeline skip the stage.
/// </summary>
public sealed record StageRecord(string Name, string Kind, string Fingerprint, string? Model, string? Dataset, int Steps,
    double TrainSeconds, double WallSeconds, StageEval? Eval, double LoadAverage)
{
    public const string File = "stage.json";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static StageRecord? TryLoad(string stageDir)
    {
        string path = Path.Combine(stageDir, File);
        if (!System.IO.File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<StageRecord>(System.IO.File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new R1SharpException($"{path}: not a stage record ({e.Message}); delete the stage's folder to run it again"); }
    }

    public void Save(string stageDir)
    {
        string path = Path.Combine(stageDir, File);
        System.IO.File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, Json) + "\n");
        System.IO.File.Move(path + ".tmp", path, overwrite: true);
    }
}
