namespace R1Sharp.Tasks;

/// <summary>PNG curves of a run (reward, accuracy, mean response length against step).</summary>
public static class RunPlots
{
    public static List<string> TryWrite(string dir, List<Dictionary<string, double>> metrics) => [];
}
