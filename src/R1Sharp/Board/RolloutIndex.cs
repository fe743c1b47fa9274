using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Board;

/// <summary>What the rollouts browser may ask for.</summary>
public sealed record RolloutQuery(int? Step = null, string Filter = "all", string Sort = "natural", string? Search = null, int Offset = 0, int Limit = 50);

/// <summary>
/// rollouts.jsonl (one line per completion the trainer learned from: step, group, prompt, completion, reference,
/// reward, rewards per function, tokens, truncated, …) behind a compact in-memory index: per line its byte range and
/// the few numbers filters and sorts need (about 40 bytes a line), built once and extended as the run appends. A page
/// reads only its own lines back from the file, so a 100k-line file never has to be held or re-parsed whole.
/// <para>Correct means the accuracy reward (a function whose name holds "accuracy" or "correct") is positive, or the
/// line's own "correct" field when it has one. The advantage is the line's own "advantage" when the trainer wrote one;
/// otherwise the page shows what can be computed from the group without the run's settings: the centred reward
/// r − mean (Dr. GRPO, Liu et al. 2025) and GRPO's (r − mean) / (std + 1e-4) (Shao et al. 2024, eq. 3; std with n − 1
/// as torch.std, the 1e-4 as TRL).</para>
/// </summary>
public sealed class RolloutIndex
{
    struct Entry
    {
        public long Offset;
        public int Length, Line, Step, Group, Tokens, GroupSlot;
        public float Reward, Advantage;
        public sbyte Correct; // -1 unknown
        public bool Truncated;
    }

    sealed class GroupStats
    {
        public readonly List<int> Members = new();
        public double Mean, Std;
        public bool ZeroStd;
    }

    readonly JsonlTail tail;
    readonly object gate = new();
    readonly List<Entry> entries = new();
    readonly List<GroupStats> groups = new();
    readonly Dictionary<(int, int), int> groupSlots = new();
    readonly HashSet<int> dirtyGroups = new();
    readonly SortedSet<string> rewardNames = new(StringComparer.Ordinal);
    int generation;
    (string Text, int Count, int Generation, List<int> Hits)? lastSearch;

    public RolloutIndex(string path) => tail = new JsonlTail(path);

    public int Count { get { lock (gate) return entries.Count; } }
    public int Generation { get { lock (gate) return tail.Generation; } }

    public void Refresh()
    {
        lock (gate)
        {
            tail.Refresh(OnLine);
            if (!tail.Exists || tail.Generation != generation) Clear();
            foreach (int g in dirtyGroups) Restat(groups[g]);
            dirtyGroups.Clear();
        }
    }

    void Clear()
    {
        generation = tail.Generation;
        entries.Clear(); groups.Clear(); groupSlots.Clear(); dirtyGroups.Clear(); rewardNames.Clear();
        lastSearch = null;
    }

    void OnLine(int line, long start, ReadOnlySpan<byte> bytes)
    {
        if (tail.Generation != generation) Clear();
        var e = new Entry { Offset = start, Length = bytes.Length, Line = line, Reward = float.NaN, Advantage = float.NaN, Correct = -1, Step = -1, Group = -1 };
        try { Scan(bytes, ref e); }
        catch (JsonException ex)
        {
            tail.Skip(line, $"not JSON ({ex.Message.Split(". ")[0]}): {Excerpt.Quote(bytes, 60)}");
            return;
        }
        if (e.Step < 0)
        {
            tail.Skip(line, "no \"step\" number: not a rollout line");
            return;
        }
        var key = (e.Step, e.Group);
        if (!groupSlots.TryGetValue(key, out int slot))
        {
            slot = groups.Count;
            groups.Add(new GroupStats());
            groupSlots[key] = slot;
        }
        e.GroupSlot = slot;
        groups[slot].Members.Add(entries.Count);
        dirtyGroups.Add(slot);
        entries.Add(e);
    }

    /// <summary>Reads the index fields of one line without building a document; the texts are skipped over.</summary>
    void Scan(ReadOnlySpan<byte> bytes, ref Entry e)
    {
        var r = new Utf8JsonReader(bytes);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject) throw new JsonException("not an object");
        bool? correctField = null;
        bool? accuracy = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            string name = r.GetString()!;
            r.Read();
            switch (name)
            {
                case "step" when r.TokenType == JsonTokenType.Number && r.TryGetInt32(out int s): e.Step = s; break;
                case "group" when r.TokenType == JsonTokenType.Number && r.TryGetInt32(out int g): e.Group = g; break;
                case "reward" when r.TokenType == JsonTokenType.Number: e.Reward = (float)r.GetDouble(); break;
                case "advantage" when r.TokenType == JsonTokenType.Number: e.Advantage = (float)r.GetDouble(); break;
                case "tokens" when r.TokenType == JsonTokenType.Number && r.TryGetInt32(out int t): e.Tokens = t; break;
                case "truncated" when r.TokenType is JsonTokenType.True or JsonTokenType.False: e.Truncated = r.GetBoolean(); break;
                case "correct" when r.TokenType is JsonTokenType.True or JsonTokenType.False: correctField = r.GetBoolean(); break;
                case "rewards" when r.TokenType == JsonTokenType.StartObject:
                    while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                    {
                        string fn = r.GetString()!;
                        r.Read();
                        if (r.TokenType == JsonTokenType.Number)
                        {
                            if (rewardNames.Count < 64) rewardNames.Add(fn);
                            if (IsAccuracy(fn)) accuracy = r.GetDouble() > 0;
                        }
                        else r.Skip();
                    }
                    break;
                default: r.Skip(); break;
            }
        }
        var verdict = correctField ?? accuracy;
        e.Correct = verdict is null ? (sbyte)-1 : verdict.Value ? (sbyte)1 : (sbyte)0;
    }

    static bool IsAccuracy(string rewardName) =>
        rewardName.Contains("accuracy", StringComparison.OrdinalIgnoreCase) || rewardName.Contains("correct", StringComparison.OrdinalIgnoreCase);

    void Restat(GroupStats g)
    {
        var rs = g.Members.Select(i => (double)entries[i].Reward).Where(double.IsFinite).ToList();
        g.Mean = rs.Count == 0 ? double.NaN : rs.Average();
        g.Std = rs.Count < 2 ? 0 : Math.Sqrt(rs.Sum(x => (x - g.Mean) * (x - g.Mean)) / (rs.Count - 1));
        g.ZeroStd = rs.Count > 1 && rs.All(x => x == rs[0]);
    }

    /// <summary>Steps present, with their completion count, mean reward and accuracy.</summary>
    public JsonObject Summary()
    {
        lock (gate)
        {
            var steps = new JsonArray();
            foreach (var s in entries.GroupBy(e => e.Step).OrderBy(g => g.Key))
            {
                var known = s.Where(e => e.Correct >= 0).ToList();
                var rewards = s.Select(e => (double)e.Reward).Where(double.IsFinite).ToList();
                steps.Add(new JsonObject
                {
                    ["step"] = s.Key, ["completions"] = s.Count(),
                    ["mean_reward"] = rewards.Count == 0 ? null : Math.Round(rewards.Average(), 4),
                    ["accuracy"] = known.Count == 0 ? null : Math.Round(known.Average(e => (double)e.Correct), 4),
                });
            }
            return new JsonObject
            {
                ["generation"] = tail.Generation, ["completions"] = entries.Count, ["groups"] = groups.Count,
                ["zero_std_groups"] = groups.Count(g => g.ZeroStd),
                ["has_verdicts"] = entries.Any(e => e.Correct >= 0),
                ["reward_functions"] = new JsonArray(rewardNames.Select(n => (JsonNode?)n).ToArray()),
                ["steps"] = steps,
                ["notes"] = new JsonArray(tail.Notes().Select(n => (JsonNode?)n).ToArray()),
            };
        }
    }

    /// <summary>One page of completions that pass the filter and search, in the asked order, each with its line's
    /// fields plus correct, advantage and its group's statistics.</summary>
    public JsonObject Query(RolloutQuery q)
    {
        lock (gate)
        {
            IEnumerable<int> pick = Enumerable.Range(0, entries.Count);
            if (q.Step is int step) pick = pick.Where(i => entries[i].Step == step);
            pick = q.Filter switch
            {
                "correct" => pick.Where(i => entries[i].Correct == 1),
                "wrong" => pick.Where(i => entries[i].Correct == 0),
                "zero-std" => pick.Where(i => groups[entries[i].GroupSlot].ZeroStd),
                "truncated" => pick.Where(i => entries[i].Truncated),
                "all" or "" => pick,
                _ => throw new BoardRequestException($"filter must be all, correct, wrong, zero-std or truncated, got {Excerpt.Quote(q.Filter, 30)}"),
            };
            var chosen = pick.ToList();
            if (!string.IsNullOrWhiteSpace(q.Search)) chosen = Search(chosen, q.Search.Trim());
            chosen = q.Sort switch
            {
                "natural" or "" => chosen,
                "reward-desc" => chosen.OrderByDescending(i => Finite(entries[i].Reward)).ThenBy(i => i).ToList(),
                "reward-asc" => chosen.OrderBy(i => float.IsFinite(entries[i].Reward) ? entries[i].Reward : float.PositiveInfinity).ThenBy(i => i).ToList(),
                "longest" => chosen.OrderByDescending(i => entries[i].Tokens).ThenBy(i => i).ToList(),
                "shortest" => chosen.OrderBy(i => entries[i].Tokens).ThenBy(i => i).ToList(),
                _ => throw new BoardRequestException($"sort must be natural, reward-desc, reward-asc, longest or shortest, got {Excerpt.Quote(q.Sort, 30)}"),
            };
            int offset = Math.Max(0, q.Offset), limit = Math.Clamp(q.Limit, 1, 500);
            var items = new JsonArray();
            if (offset < chosen.Count)
            {
                using var reader = new LineReader(tail.Path);
                foreach (int i in chosen.Skip(offset).Take(limit)) items.Add(Item(reader, i));
            }
            return new JsonObject { ["generation"] = tail.Generation, ["total"] = chosen.Count, ["offset"] = offset, ["items"] = items };
        }
    }

    static float Finite(float x) => float.IsFinite(x) ? x : float.NegativeInfinity;

    JsonObject Item(LineReader reader, int i)
    {
        var e = entries[i];
        var g = groups[e.GroupSlot];
        JsonObject line;
        try { line = JsonNode.Parse(reader.Read(e.Offset, e.Length)) as JsonObject ?? new JsonObject(); }
        catch (JsonException) { line = new JsonObject { ["error"] = "this line changed on disk since it was indexed; the page refreshes" }; }
        bool grouped = g.Members.Count > 1 && double.IsFinite(e.Reward);
        line["line"] = e.Line;
        line["correct"] = e.Correct < 0 ? null : e.Correct == 1;
        line["advantage"] = float.IsFinite(e.Advantage) ? Math.Round(e.Advantage, 4) : null;
        // Without the trainer's own value: the centred reward (Dr. GRPO's advantage, scale_rewards none) and the
        // group-scaled one (GRPO's default, scale_rewards group); the run folder does not say which the run used.
        line["centred_reward"] = grouped ? Math.Round(e.Reward - g.Mean, 4) : null;
        line["group_scaled_advantage"] = grouped ? Math.Round((e.Reward - g.Mean) / (g.Std + 1e-4), 4) : null;
        line["group_size"] = g.Members.Count;
        line["group_mean_reward"] = double.IsFinite(g.Mean) ? Math.Round(g.Mean, 4) : null;
        line["group_zero_std"] = g.ZeroStd;
        line["index_in_group"] = g.Members.IndexOf(i);
        return line;
    }

    /// <summary>Completions whose prompt or completion holds the text (case-insensitive). The last search is kept, so
    /// paging through its hits does not read the file again.</summary>
    List<int> Search(List<int> candidates, string text)
    {
        if (text.Length > 200) throw new BoardRequestException("search text is longer than 200 characters");
        List<int> hits;
        if (lastSearch is { } s && s.Text == text && s.Count == entries.Count && s.Generation == tail.Generation) hits = s.Hits;
        else
        {
            hits = new List<int>();
            using var reader = new LineReader(tail.Path);
            for (int i = 0; i < entries.Count; i++)
            {
                var bytes = reader.Read(entries[i].Offset, entries[i].Length);
                // Relaxed JSON escaping leaves most text as it is: a raw match is a cheap first test.
                string raw = Encoding.UTF8.GetString(bytes);
                if (raw.Contains(text, StringComparison.OrdinalIgnoreCase) || raw.Contains('\\'))
                    if (TextsContain(bytes, text)) hits.Add(i);
            }
            lastSearch = (text, entries.Count, tail.Generation, hits);
        }
        var set = new HashSet<int>(candidates);
        return hits.Where(set.Contains).ToList();
    }

    static bool TextsContain(ReadOnlySpan<byte> bytes, string text)
    {
        try
        {
            var r = new Utf8JsonReader(bytes);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return false;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                bool wanted = r.ValueTextEquals("prompt"u8) || r.ValueTextEquals("completion"u8) || r.ValueTextEquals("reference"u8);
                r.Read();
                if (wanted && r.TokenType == JsonTokenType.String && r.GetString()!.Contains(text, StringComparison.OrdinalIgnoreCase)) return true;
                r.Skip();
            }
        }
        catch (JsonException) { }
        return false;
    }
}
