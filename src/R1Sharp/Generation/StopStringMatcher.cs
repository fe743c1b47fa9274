namespace R1Sharp.Generation;

/// <summary>
/// Watches a growing completion for stop strings. Text is released for streaming only once it can no longer be the
/// start of a stop string, so a client never sees text that is then cut away.
/// </summary>
public sealed class StopStringMatcher
{
    readonly IReadOnlyList<string> stops;
    readonly System.Text.StringBuilder text = new();
    int released;

    public StopStringMatcher(IReadOnlyList<string> stops) => this.stops = stops.Where(s => s.Length > 0).ToArray();

    public bool Stopped { get; private set; }

    /// <summary>The completion so far (cut before the stop string once one matched).</summary>
    public string Text => text.ToString();

    /// <summary>Adds decoded text; returns the text now safe to stream.</summary>
    public string Push(string delta)
    {
        if (Stopped || delta.Length == 0) return "";
        int searchFrom = Math.Max(0, text.Length - stops.DefaultIfEmpty("").Max(s => s.Length));
        text.Append(delta);
        string all = text.ToString();
        int cut = -1;
        foreach (var s in stops)
        {
            int i = all.IndexOf(s, searchFrom, StringComparison.Ordinal);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0)
        {
            Stopped = true;
            text.Length = cut;
            return Release(cut);
        }
        return Release(all.Length - HeldBack(all));
    }

    /// <summary>Everything not yet released (at the end of generation).</summary>
    public string Flush() => Release(text.Length);

    /// <summary>Length of the longest suffix of s that is a proper prefix of some stop string.</summary>
    int HeldBack(string s)
    {
        int hold = 0;
        foreach (var stop in stops)
            for (int k = Math.Min(stop.Length - 1, s.Length); k > hold; k--)
                if (string.CompareOrdinal(s, s.Length - k, stop, 0, k) == 0) { hold = k; break; }
        return hold;
    }

    string Release(int upTo)
    {
        if (upTo <= released) return "";
        string r = text.ToString(released, upTo - released);
        released = upTo;
        return r;
    }
}
