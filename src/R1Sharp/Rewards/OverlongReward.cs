namespace R1Sharp.Rewards;

/// <summary>
/// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 up to L_max − L_cache tokens, then a linear penalty
/// reaching −1 at L_max, and −1 beyond. Counts completion tokens, so it takes a token counter.
/// </summary>
public static class OverlongReward
{
    public static double Penalty(int length, int maxLength, int buffer)
    {
        int free = maxLength - buffer;
        if (length <= free) return 0;
        if (length <= maxLength) return (double)(free - length) / buffer;
        return -1;
    }

    public static RewardFunction Create(Func<string, int> countTokens, int maxLength, int buffer, double weight = 1.0)
    {
        if (buffer < 1 || buffer > maxLength) throw new R1SharpException($"overlong_buffer_len must be in 1..max_completion_length, got {buffer}");
        return new RewardFunction("overlong", (_, completion, _) => Penalty(countTokens(completion), maxLength, buffer), weight);
    }
}
