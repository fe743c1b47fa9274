using System.Text.Json.Nodes;
using OpenQA.Selenium;
using R1Sharp.Training;

namespace R1Sharp.Tests.Board;

/// <summary>The board in a real headless Chromium: what a person sees, read back from the page.</summary>
[Collection(BoardBrowserCollection.Name)]
public class BoardPageTests
{
    readonly BoardBrowser b;
    public BoardPageTests(BoardBrowser browser) => b = browser;

    /// <summary>Per series of a metric's chart: its label and how many points it has.</summary>
    List<(string Label, long Points)>? Series(string metric)
    {
        var raw = b.Js("""
            const c = window.board && window.board.charts.get(arguments[0]);
            if (!c) return null;
            return c.u.series.slice(1).map((s, i) => [s.label, c.u.data[i + 1].filter(v => v != null).length]);
            """, metric) as System.Collections.IEnumerable;
        return raw?.Cast<System.Collections.IList>().Select(x => ((string)x[0]!, (long)x[1]!)).ToList();
    }

    string Notices() => b.Driver.FindElement(By.Id("notices")).Text;

    [Fact]
    public void AFixtureRunLoadsWithOneChartPerMetricAndEveryPoint()
    {
        string run = b.Id("zero/grpo");
        b.Open($"view=curves&runs={run}");
        var reward = b.WaitFor(() => Series("reward"), s => s.Count == 1, "the reward chart");
        Assert.Equal([(run, 40L)], reward);
        // One chart per key of metrics.jsonl (the step is the axis), read from the file, not from the board.
        var keys = File.ReadLines(Path.Combine(b.Runs.Root, "zero/grpo/metrics.jsonl"))
            .SelectMany(l => JsonNode.Parse(l)!.AsObject().Select(kv => kv.Key)).Distinct().Where(k => k != "step").ToHashSet();
        var shown = b.Driver.FindElements(By.CssSelector("#charts .chart")).Select(e => e.GetAttribute("data-metric") ?? "").ToHashSet();
        Assert.Equal(keys, shown);
        Assert.Equal([(run, 40L)], Series("completions/mean_length"));
        Assert.Contains("Mean reward", b.Driver.FindElement(By.CssSelector("#charts .chart[data-metric='reward'] h3")).Text);
        Assert.DoesNotContain("skipped", Notices()); // the only note is about the empty second folder
    }

    [Fact]
    public void TwoRunsOverlayOnOneChartWithALegend()
    {
        string zero = b.Id("zero/grpo"), second = b.Id("second");
        b.Open($"view=curves&runs={zero},{second}");
        var reward = b.WaitFor(() => Series("reward"), s => s.Count == 2, "two series on the reward chart");
        Assert.Equal([(zero, 40L), (second, 25L)], reward);
        var legend = b.Driver.FindElements(By.CssSelector("#charts .chart[data-metric='reward'] .u-legend .u-series .u-label")).Select(e => e.Text).ToList();
        Assert.Contains(zero, legend);
        Assert.Contains(second, legend);
        // The x axis is the union of both runs' steps (1..40 holds 1..25).
        Assert.Equal(40L, b.Js("return window.board.charts.get('reward').u.data[0].length"));
        // Unticking a run in the list takes it off again.
        b.Driver.FindElement(By.CssSelector($"#runs li[data-run='{second}'] input")).Click();
        b.WaitFor(() => Series("reward"), s => s.Count == 1, "one series after unticking");
    }

    [Fact]
    public void SmoothingAndLogScaleKeepEveryPointAndHoverShowsValues()
    {
        string run = b.Id("second");
        b.Open($"view=curves&runs={run}&smoothing=0.6&log=1&metric=kl");
        var kl = b.WaitFor(() => Series("kl"), s => s.Count == 2, "smoothed and raw kl");
        Assert.Equal($"{run} (raw)", kl[1].Label);
        // kl is 0 at step 1 (the policy is the reference): hidden on the log scale, and the chart says so.
        Assert.Equal(24L, kl[1].Points);
        Assert.Equal(24L, kl[0].Points);
        Assert.Contains("1 value(s) ≤ 0 hidden on the log scale", b.Driver.FindElement(By.CssSelector("#charts .chart[data-metric='kl'] .note")).Text);
        Assert.Equal(3L, b.Js("return window.board.charts.get('kl').u.scales.y.distr"));
        // Hovering step 21 shows its values in the legend: the raw one as written, the smoothed one below it (kl rises).
        b.Js("const u = window.board.charts.get('kl').u; u.setCursor({left: u.valToPos(21, 'x'), top: 50});");
        var values = b.Driver.FindElements(By.CssSelector("#charts .chart[data-metric='kl'] .u-legend .u-series .u-value")).Select(e => e.Text).ToList();
        Assert.Equal("21", values[0]);
        Assert.Equal(0.02, double.Parse(values[2], System.Globalization.CultureInfo.InvariantCulture), 9);
        Assert.InRange(double.Parse(values[1], System.Globalization.CultureInfo.InvariantCulture), 0.015, 0.0199);
    }

    [Fact]
    public void TheRolloutsFilterShowsExactlyTheWrongCompletions()
    {
        string run = b.Id("zero/grpo");
        b.Open($"view=rollouts&ro={run}&step=2");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ro-list .rollout")).Count, n => n == 50, "the first page of step 2");
        b.Driver.FindElement(By.CssSelector("#ro-filter option[value='wrong']")).Click();
        // What the file says: step 2's completions whose accuracy reward is 0 (line numbers are 1-based).
        var expected = b.Runs.ZeroRollouts().Select((r, i) => (r, Line: i + 1))
            .Where(x => (int)x.r["step"]! == 2 && (double)x.r["rewards"]!["accuracy"]! == 0).Select(x => x.Line.ToString()).ToList();
        Assert.InRange(expected.Count, 1, 50);
        var lines = b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ro-list .rollout")).Select(e => e.GetAttribute("data-line")).ToList(),
            l => l.SequenceEqual(expected), $"the {expected.Count} wrong completions of step 2");
        Assert.All(b.Driver.FindElements(By.CssSelector("#ro-list .rollout")), e => Assert.Equal("false", e.GetAttribute("data-correct")));
        Assert.Equal($"1–{expected.Count} of {expected.Count}", b.Driver.FindElement(By.CssSelector("#ro-pager .count")).Text);
        // The reasoning is folded, the answer shown apart.
        var first = b.Driver.FindElement(By.CssSelector("#ro-list .rollout"));
        Assert.False(first.FindElement(By.CssSelector("details.think")).GetAttribute("open") is "true" or "");
        Assert.Contains("<answer>", first.FindElement(By.CssSelector(".answer")).Text);
    }

    [Fact]
    public void AMetricLineAppendedToTheFileAppearsWithoutAReload()
    {
        string run = b.Id("live");
        b.Open($"view=curves&runs={run}");
        b.WaitFor(() => Series("reward"), s => s.Count == 1 && s[0].Points == 3, "3 points");
        b.Js("window.__sameDocument = 42;");
        File.AppendAllText(Path.Combine(b.Runs.Root, "live/metrics.jsonl"), MetricsLog.Serialize(BoardFixtureRuns.Row(4, reward: 0.95)) + "\n");
        b.WaitFor(() => Series("reward"), s => s[0].Points == 4, "the appended 4th point");
        Assert.Equal(42L, b.Js("return window.__sameDocument"));
        Assert.Equal(0.95, Convert.ToDouble(b.Js("const d = window.board.charts.get('reward').u.data; return d[1][d[1].length - 1];")), 9);
        Assert.Equal("live", b.Driver.FindElement(By.Id("live")).Text);
    }

    [Fact]
    public void BadInputShowsWhatItCanAndSaysWhatItSkipped()
    {
        b.Open($"view=curves&runs={b.Id("bad/still-writing")}");
        b.WaitFor(() => Series("reward"), s => s.Count == 1 && s[0].Points == 5, "5 complete rows of a run still writing");
        Assert.Contains("the last line is incomplete", Notices());
        // The empty second folder given to the board is named on every view.
        Assert.Contains($"{b.Runs.EmptyRoot}: no runs found", Notices());

        b.Open($"view=curves&runs={b.Id("bad/malformed")}");
        b.WaitFor(() => Series("reward"), s => s.Count == 1 && s[0].Points == 4, "4 good rows around a malformed one");
        Assert.Contains("metrics.jsonl line 3 skipped: not JSON", Notices());

        b.Open($"view=curves&runs={b.Id("bad/unknown")}");
        var mystery = b.WaitFor(() => Series("mystery/quality"), s => s.Count == 1, "the unknown metric's chart");
        Assert.Equal(4L, mystery[0].Points);
        Assert.Contains("not a metric the board knows", b.Driver.FindElement(By.CssSelector("#charts .chart[data-metric='mystery/quality'] h3")).Text);
        Assert.Contains("\"comment\" is the text", Notices());

        b.Open($"view=curves&runs={b.Id("bad/empty-metrics")}");
        b.WaitFor(() => b.Driver.FindElement(By.Id("charts")).Text, t => t.Contains("no complete rows yet"), "the empty-file message");

        b.Open($"view=rollouts&ro={b.Id("bad/rollouts")}");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ro-list .rollout")).Count, n => n == 8, "the 8 good rollouts");
        string notes = Notices();
        Assert.Contains("rollouts.jsonl line 5 skipped", notes);
        Assert.Contains("rollouts.jsonl line 6 skipped: not JSON", notes);
        Assert.Contains("the last line is incomplete", notes);

        b.Open($"view=evals&ev={b.Id("bad/eval-torn")}");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ev-problems tr.problem")).Count, n => n == 6, "the torn eval's 6 problems");
        Assert.Contains("summary.json skipped", Notices());
        Assert.Contains("50.0 ± ", b.Driver.FindElement(By.Id("ev-cards")).Text); // 12 of 24 correct
        Assert.Equal(0L, b.Js("return window.board.errors.length"));
    }

    [Fact]
    public void EvalsShowScoresProblemsAndSamplesAndCompareSideBySide()
    {
        b.Open($"view=evals&ev={b.Id("evals/a")}");
        var rows = b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ev-problems tr.problem")), r => r.Count == 6, "six problems");
        string cards = b.Driver.FindElement(By.Id("ev-cards")).Text;
        Assert.Contains($"50.0 ± {100 * Math.Sqrt(1.125 / 5 / 6):F1}", cards);
        Assert.Contains("cons@4\n50.0", cards);
        Assert.Contains("algebra", b.Driver.FindElement(By.Id("ev-groups")).Text);
        rows[1].Click(); // p1: 3 of 4 correct
        var verdicts = b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ev-problems .samples-row .sample")).Select(e => e.GetAttribute("data-correct")).ToList(),
            v => v.Count == 4, "p1's samples");
        Assert.Equal(["true", "true", "true", "false"], verdicts);

        b.Open($"view=compare&a={b.Id("evals/a")}&b={b.Id("evals/b")}");
        var onlyA = b.WaitFor(() => b.Driver.FindElements(By.CssSelector("table.only-a tr.problem")).Select(e => e.GetAttribute("data-id")).ToList(), l => l.Count > 0, "solved by A only");
        Assert.Equal(["p1", "p4"], onlyA);
        Assert.Equal(["p2"], b.Driver.FindElements(By.CssSelector("table.only-b tr.problem")).Select(e => e.GetAttribute("data-id")));
        b.Driver.FindElement(By.CssSelector("table.only-b tr.problem")).Click();
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("table.only-b .side-by-side .sample")).Count, n => n == 8, "both runs' samples of p2");
    }

    [Fact]
    public void APipelineFolderShowsItsStagesAndReport()
    {
        b.Open($"view=pipeline&pl={b.Id("zero")}");
        var stages = b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#pl-stages tr[data-stage]")).Select(e => e.GetAttribute("data-stage")).ToList(), s => s.Count > 0, "the stages");
        Assert.Equal(["grpo"], stages);
        Assert.StartsWith("# R1-Zero on a CPU: run report", b.Driver.FindElement(By.Id("pl-report")).Text);
    }

    [Fact]
    public void ScreenshotsOfTheMainViewsAreSavedAsTestOutput()
    {
        var shots = new List<string>();
        b.Open($"view=curves&runs={b.Id("zero/grpo")},{b.Id("second")}&smoothing=0.3");
        b.WaitFor(() => Series("reward"), s => s.Count == 4, "overlaid smoothed curves");
        shots.Add(b.Screenshot("board-curves"));
        b.Open($"view=rollouts&ro={b.Id("zero/grpo")}&step=5&filter=wrong");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ro-list .rollout")).Count, n => n > 0, "rollouts");
        shots.Add(b.Screenshot("board-rollouts"));
        b.Open($"view=evals&ev={b.Id("evals/a")}");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#ev-problems tr.problem")).Count, n => n == 6, "the eval");
        shots.Add(b.Screenshot("board-evals"));
        b.Open($"view=compare&a={b.Id("evals/a")}&b={b.Id("evals/b")}");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("table.only-a tr.problem")).Count, n => n == 2, "the comparison");
        shots.Add(b.Screenshot("board-compare"));
        b.Open($"view=pipeline&pl={b.Id("zero")}");
        b.WaitFor(() => b.Driver.FindElements(By.CssSelector("#pl-stages tr[data-stage]")).Count, n => n == 1, "the pipeline");
        shots.Add(b.Screenshot("board-pipeline"));
        foreach (var path in shots)
        {
            var png = File.ReadAllBytes(path);
            Assert.Equal("\x89PNG", System.Text.Encoding.Latin1.GetString(png, 0, 4));
            int width = png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19]; // IHDR
            Assert.Equal(1400, width);
        }
    }
}
