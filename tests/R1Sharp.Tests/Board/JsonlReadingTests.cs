using System.Text;
using R1Sharp.Board;
using R1Sharp.Training;

namespace R1Sharp.Tests.Board;

/// <summary>Reading files that runs are still writing: only complete lines, skipped lines named, rewrites noticed.</summary>
public class JsonlReadingTests
{
    static List<(int Line, string Text)> Read(JsonlTail tail)
    {
        var got = new List<(int, string)>();
        tail.Refresh((line, _, bytes) => got.Add((line, Encoding.UTF8.GetString(bytes))));
        return got;
    }

    [Fact]
    public void APartialLastLineWaitsUntilItsNewlineArrives()
    {
        using var dir = new TempDir();
        string path = dir.File("x.jsonl");
        File.WriteAllText(path, "{\"a\":1}\n{\"a\":2}\n{\"a\":");
        var tail = new JsonlTail(path);
        Assert.Equal([(1, "{\"a\":1}"), (2, "{\"a\":2}")], Read(tail));
        Assert.Equal(5, tail.PendingBytes);
        Assert.Contains(tail.Notes(), n => n.Contains("last line is incomplete (5 bytes"));
        File.AppendAllText(path, "3}\n{\"a\":4}\n");
        Assert.Equal([(3, "{\"a\":3}"), (4, "{\"a\":4}")], Read(tail));
        Assert.Equal(0, tail.PendingBytes);
        Assert.Empty(Read(tail)); // nothing new
        Assert.Equal(0, tail.Generation);
    }

    [Fact]
    public void ARewrittenFileStartsOverEvenWhenItDidNotShrink()
    {
        using var dir = new TempDir();
        string path = dir.File("m.jsonl");
        File.WriteAllText(path, "{\"step\":1}\n{\"step\":2}\n");
        var tail = new JsonlTail(path);
        Assert.Equal(2, Read(tail).Count);
        // A resumed trainer rewrites the file from its checkpoint's copy, then appends: longer, different bytes.
        File.WriteAllText(path, "{\"step\":1}\n{\"step\":9}\n{\"step\":3}\n");
        var again = Read(tail);
        Assert.Equal(1, tail.Generation);
        Assert.Equal([(1, "{\"step\":1}"), (2, "{\"step\":9}"), (3, "{\"step\":3}")], again);
        File.WriteAllText(path, "{\"step\":1}\n"); // shorter
        Assert.Equal([(1, "{\"step\":1}")], Read(tail));
        Assert.Equal(2, tail.Generation);
    }

    [Fact]
    public void MetricsKeepGoodRowsAndNameWhatTheySkipped()
    {
        using var dir = new TempDir();
        string path = dir.File("metrics.jsonl");
        var rows = new[]
        {
            MetricsLog.Serialize(new() { ["step"] = 1, ["reward"] = 0.5, ["rollout_seconds"] = 2, ["update_seconds"] = 1 }),
            "{\"step\": 2, \"reward\": nope}",
            MetricsLog.Serialize(new() { ["step"] = 3, ["reward"] = double.NaN, ["rollout_seconds"] = 2, ["update_seconds"] = 1, ["my/new_metric"] = 7 }),
            "[1, 2]",
            "{\"step\": 4, \"reward\": 0.75, \"note\": \"fine\", \"rollout_seconds\": 1}",
        };
        File.WriteAllText(path, string.Join("\n", rows) + "\n");
        var m = new MetricsSeries(path);
        m.Refresh();
        var j = m.ToJson();
        Assert.Equal(3, (int)j["rows"]!);
        Assert.Equal([1.0, 3, 4], j["step"]!.AsArray().Select(x => (double)x!));
        // NaN was written as the string "NaN" by MetricsLog: a row without a point, not a skipped line.
        Assert.Equal([0.5, null, 0.75], j["columns"]!["reward"]!.AsArray().Select(x => (double?)x));
        Assert.Equal([null, 7.0, null], j["columns"]!["my/new_metric"]!.AsArray().Select(x => (double?)x));
        // Wall time: the running sum of each row's *_seconds.
        Assert.Equal([3.0, 6, 7], j["wall"]!.AsArray().Select(x => (double)x!));
        var notes = j["notes"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Equal(3, notes.Count);
        Assert.StartsWith("metrics.jsonl line 2 skipped: not JSON", notes[0]);
        Assert.Equal("metrics.jsonl line 4 skipped: a JSON array, not an object", notes[1]);
        Assert.StartsWith("metrics.jsonl line 5 skipped: \"note\" is the text \"fine\", not a number", notes[2]);

        // Appended rows come as the rows after the ones a client has.
        File.AppendAllText(path, MetricsLog.Serialize(new() { ["step"] = 5, ["reward"] = 1 }) + "\n");
        m.Refresh();
        var more = m.ToJson(from: 3);
        Assert.Equal(4, (int)more["rows"]!);
        Assert.Equal([5.0], more["step"]!.AsArray().Select(x => (double)x!));
        Assert.Equal([1.0], more["columns"]!["reward"]!.AsArray().Select(x => (double?)x));
    }
}
