namespace R1Sharp.Training.Sft;

/// <summary>
/// Packs samples into rows of at most max_length tokens by best-fit decreasing (TRL's packing_strategy "bfd"):
/// longest first, each into the fullest row that still has room, a new row when none has. Deterministic, so a resumed
/// run packs the same rows.
/// </summary>
public static class Packing
{
    /// <summary>Rows as lists of sample indices; every sample must already fit in <paramref name="maxLength"/>.</summary>
    public static List<List<int>> BestFitDecreasing(IReadOnlyList<int> lengths, int maxLength)
    {
        var order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ThenBy(i => i).ToList();
        var rows = new List<List<int>>();
        var free = new List<int>();
        // Rows by remaining room, so the best fit is a lookup rather than a scan (SortedSet of (room, row)).
        var byRoom = new SortedSet<(int Room, int Row)>();
        foreach (int i in order)
        {
            int len = lengths[i];
            if (len > maxLength) throw new ArgumentException($"sample {i} has {len} tokens, more than max_length {maxLength}");
            var fits = byRoom.GetViewBetween((len, 0), (int.MaxValue, int.MaxValue));
            if (fits.Count == 0) { rows.Add([i]); free.Add(maxLength - len); byRoom.Add((maxLength - len, rows.Count - 1)); continue; }
            var best = fits.Min;
            byRoom.Remove(best);
            rows[best.Row].Add(i);
            free[best.Row] -= len;
            byRoom.Add((free[best.Row], best.Row));
        }
        return rows;
    }
}
