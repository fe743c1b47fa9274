namespace R1Sharp.Training.Memory;

/// <summary>
/// The process's peak resident memory per phase of a step (rollout, update), for metrics.jsonl: Linux keeps the peak
/// in /proc/self/status (VmHWM) and resets it to the current RSS when 5 is written to /proc/self/clear_refs. Elsewhere
/// (or where /proc is not writable) the phases read NaN rather than a wrong number.
/// </summary>
public static class PeakMemory
{
    /// <summary>Starts a phase: the peak drops to the current resident size.</summary>
    public static void Reset()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The peak resident memory since the last <see cref="Reset"/>, in GB (10⁹ bytes).</summary>
    public static double PeakGb() => Read("VmHWM:") is long kb and >= 0 ? kb * 1024 / 1e9 : double.NaN;

    /// <summary>The current resident memory in GB.</summary>
    public static double ResidentGb() => Read("VmRSS:") is long kb and >= 0 ? kb * 1024 / 1e9 : double.NaN;

    static long Read(string key)
    {
        if (!OperatingSystem.IsLinux()) return -1;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return -1;
    }
}
