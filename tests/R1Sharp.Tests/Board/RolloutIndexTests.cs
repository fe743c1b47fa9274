using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Board;

namespace R1Sharp.Tests.Board;

/// <summary>The rollouts browser's index over a 100k-line rollouts.jsonl: filters, sorts, pages and search give exactly
/// the lines a plain reading of the file says they should, and appended lines join without a rebuild.</summary>
public class RolloutIndexTests
{
    const int Lines = 100_000, Group = 8, PerStep = 64;

    /// <summary>Line i (0-based): step i/64+1, group (i%64)/8; correct when i%3==0; groups of step%10==0 are all
    /// wrong with equal rewards (zero std); every 97th truncated; tokens 10 + i%50; "needle" in every 10007th.</summary>
    static (int Step, int Group, bool Correct, double Reward, int Tokens, bool Truncated, bool Needle) Spec(int i)
    {
        int step = i / PerStep + 1, group = i % PerStep / Group;
        bool zeroStd = step % 10 == 0;
        bool correct = !zeroStd && i % 3 == 0;
        return (step, group, correct, correct ? 1.5 : 0.5, 10 + i % 50, i % 97 == 0, i % 10007 == 0);
    }

    static string WriteFile(TempDir dir, int from, int to)
    {
        string path = dir.File("rollouts.jsonl");
        var sb = new StringBuilder();
        for (int i = from; i < to; i++)
        {
            var s = Spec(i);
            sb.Append(new JsonObject
            {
                ["step"] = s.Step, ["group"] = s.Group, ["prompt"] = $"{i}+{i}", ["completion"] = $" <think>line {i}{(s.Needle ? " a Needle here" : "")}\n</think> <answer>{(s.Correct ? 2 * i : 0)}</answer>",
                ["reference"] = (2 * i).ToString(), ["reward"] = s.Reward, ["rewards"] = new JsonObject { ["accuracy"] = s.Correct ? 1 : 0, ["format"] = 1 },
                ["tokens"] = s.Tokens, ["truncated"] = s.Truncated, ["weight_version"] = $"step-{s.Step - 1}", ["source"] = "local",
            }.ToJsonString()).Append('\n');
        }
        File.AppendAllText(path, sb.ToString());
        return path;
    }

    static List<int> LinesOf(JsonObject page) => page["items"]!.AsArray().Select(x => (int)x!["line"]! - 1).ToList();

    [Fact]
    public void FiltersSortsPagesAndSearchMatchThePlainFile()
    {
        using var dir = new TempDir();
        string path = WriteFile(dir, 0, Lines);
        var index = new RolloutIndex(path);
        index.Refresh();
        Assert.Equal(Lines, index.Count);

        var wrong = Enumerable.Range(0, Lines).Where(i => !Spec(i).Correct).ToList();
        var page = index.Query(new RolloutQuery(Filter: "wrong", Offset: 0, Limit: 50));
        Assert.Equal(wrong.Count, (int)page["total"]!);
        Assert.Equal(wrong.Take(50), LinesOf(page));
        Assert.All(page["items"]!.AsArray(), x => Assert.False((bool)x!["correct"]!));
        var later = index.Query(new RolloutQuery(Filter: "wrong", Offset: 50_000, Limit: 50));
        Assert.Equal(wrong.Skip(50_000).Take(50), LinesOf(later));

        // One step, wrong only: the lines of that step that are not correct.
        var step7 = index.Query(new RolloutQuery(Step: 7, Filter: "wrong", Limit: 500));
        Assert.Equal(Enumerable.Range(0, Lines).Where(i => Spec(i).Step == 7 && !Spec(i).Correct), LinesOf(step7));

        var truncated = index.Query(new RolloutQuery(Filter: "truncated", Limit: 500));
        Assert.Equal(Enumerable.Range(0, Lines).Where(i => Spec(i).Truncated).Take(500), LinesOf(truncated));
        var zeroStd = index.Query(new RolloutQuery(Filter: "zero-std", Limit: 10));
        Assert.Equal(Enumerable.Range(0, Lines).Count(i => Spec(i).Step % 10 == 0), (int)zeroStd["total"]!);

        var longest = index.Query(new RolloutQuery(Sort: "longest", Limit: 3));
        Assert.Equal([49, 99, 149], LinesOf(longest)); // tokens 59, the first three in file order
        var needles = index.Query(new RolloutQuery(Search: "NEEDLE", Limit: 50));
        Assert.Equal(Enumerable.Range(0, Lines).Where(i => Spec(i).Needle), LinesOf(needles));
        // The search is on the texts, not the JSON: "\n" in a completion is a newline, and keys are not text.
        Assert.Equal(0, (int)index.Query(new RolloutQuery(Search: "weight_version"))["total"]!);
        Assert.Equal(1, (int)index.Query(new RolloutQuery(Search: "line 12345\n</think>"))["total"]!);
    }

    [Fact]
    public void AppendedLinesJoinTheIndexAndGroupsAreRestated()
    {
        using var dir = new TempDir();
        string path = WriteFile(dir, 0, 60); // step 1, groups 0..6 complete, group 7 with 4 of 8
        var index = new RolloutIndex(path);
        index.Refresh();
        var part = index.Query(new RolloutQuery(Step: 1, Limit: 500)).AsObject()["items"]!.AsArray().Last()!;
        Assert.Equal(4, (int)part["group_size"]!);
        WriteFile(dir, 60, 200);
        index.Refresh();
        Assert.Equal(200, index.Count);
        Assert.Equal(0, index.Generation);
        var items = index.Query(new RolloutQuery(Step: 1, Limit: 500))["items"]!.AsArray();
        Assert.Equal(64, items.Count);
        var group7 = items.Where(x => (int)x!["group"]! == 7).ToList();
        Assert.All(group7, x => Assert.Equal(8, (int)x!["group_size"]!));
        // No advantage in the file: the centred reward (Dr. GRPO) and GRPO's (r − mean) / (std + 1e-4) with the n−1 std
        // of torch.std, by hand for group 7 (lines 56..63).
        var rewards = Enumerable.Range(56, 8).Select(i => Spec(i).Reward).ToArray();
        double mean = rewards.Average(), std = Math.Sqrt(rewards.Sum(r => (r - mean) * (r - mean)) / 7);
        for (int k = 0; k < 8; k++)
        {
            Assert.Null(group7[k]!["advantage"]);
            Assert.Equal(rewards[k] - mean, (double)group7[k]!["centred_reward"]!, 4);
            Assert.Equal((rewards[k] - mean) / (std + 1e-4), (double)group7[k]!["group_scaled_advantage"]!, 4);
        }
    }

    [Fact]
    public void TheTrainersOwnAdvantageIsShownWhenTheLineHasOne()
    {
        using var dir = new TempDir();
        string path = dir.File("rollouts.jsonl");
        File.WriteAllText(path, "{\"step\":1,\"group\":0,\"reward\":1,\"advantage\":0.25}\n{\"step\":1,\"group\":0,\"reward\":0,\"advantage\":-0.25}\n");
        var index = new RolloutIndex(path);
        index.Refresh();
        var items = index.Query(new RolloutQuery())["items"]!.AsArray();
        Assert.Equal([0.25, -0.25], items.Select(x => (double)x!["advantage"]!));
        Assert.Equal([0.5, -0.5], items.Select(x => (double)x!["centred_reward"]!));
    }

    [Fact]
    public void BadLinesAreSkippedAndNamed()
    {
        using var dir = new TempDir();
        string path = dir.File("rollouts.jsonl");
        File.WriteAllText(path, "{\"step\":1,\"group\":0,\"reward\":1,\"rewards\":{\"accuracy_reward\":1},\"completion\":\"a\"}\n" +
            "{\"step\":1,\"group\":0,\"rew\n" + "{\"group\":0}\n" + "{\"step\":1,\"group\":0,\"reward\":0,\"rewards\":{\"accuracy_reward\":0},\"completion\":\"b\"}\n{\"step\":2,");
        var index = new RolloutIndex(path);
        index.Refresh();
        Assert.Equal(2, index.Count);
        var notes = index.Summary()["notes"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Equal(3, notes.Count);
        Assert.StartsWith("rollouts.jsonl line 2 skipped: not JSON", notes[0]);
        Assert.Equal("rollouts.jsonl line 3 skipped: no \"step\" number: not a rollout line", notes[1]);
        Assert.Contains("last line is incomplete", notes[2]);
        Assert.Equal([true, false], index.Query(new RolloutQuery())["items"]!.AsArray().Select(x => (bool?)x!["correct"]));
        Assert.Throws<BoardRequestException>(() => index.Query(new RolloutQuery(Filter: "bogus")));
    }
}
