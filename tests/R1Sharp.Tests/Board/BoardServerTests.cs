using System.Net;
using System.Text.Json.Nodes;
using R1Sharp.Board;
using R1Sharp.Training;

namespace R1Sharp.Tests.Board;

/// <summary>The board's HTTP side without a browser: no request about any run, good or broken, gets a server error;
/// the key guards every route; the event stream names a run when its file grows.</summary>
[Collection(BoardBrowserCollection.Name)]
public class BoardServerTests
{
    readonly BoardBrowser b;
    public BoardServerTests(BoardBrowser browser) => b = browser;

    [Fact]
    public async Task NoRequestAboutAnyRunGetsAServerError()
    {
        using var http = new HttpClient { BaseAddress = b.Base, Timeout = TimeSpan.FromSeconds(30) };
        var runs = JsonNode.Parse(await http.GetStringAsync("/api/runs"))!["runs"]!.AsArray().Select(r => (string)r!["id"]!).ToList();
        Assert.True(runs.Count >= 12, string.Join(", ", runs));
        var paths = new List<string> { "/", "/static/board.js", "/static/uPlot.iife.min.js", "/static/uPlot.LICENSE", "/static/../R1Sharp.dll", "/static/nope.js",
            "/api/runs", "/api/metrics", "/api/metrics?run=", "/api/metrics?run=nope", "/api/compare?a=x", "/nope", "/api/eval/problem?run=x" };
        string[] weird = ["from=-5", "from=abc", "from=999999999", "generation=7", "step=-1", "step=x", "offset=-10", "limit=0", "limit=100000",
            "filter=bogus", "sort=bogus", "q=%5C%22%3C%2Fthink%3E", "q=" + new string('a', 300), "id=p1", "id=nope", "id="];
        foreach (var id in runs)
        {
            string run = "run=" + Uri.EscapeDataString(id);
            foreach (var route in new[] { "metrics", "rollouts", "rollouts/summary", "eval", "eval/problem", "pipeline", "report" })
            {
                paths.Add($"/api/{route}?{run}");
                paths.AddRange(weird.Select(w => $"/api/{route}?{run}&{w}"));
            }
            foreach (var other in runs.Take(6)) paths.Add($"/api/compare?a={Uri.EscapeDataString(id)}&b={Uri.EscapeDataString(other)}");
        }
        int ok = 0;
        foreach (var path in paths)
        {
            using var response = await http.GetAsync(path);
            string body = await response.Content.ReadAsStringAsync();
            Assert.True((int)response.StatusCode < 500, $"{path}: {(int)response.StatusCode} {body}");
            if (response.IsSuccessStatusCode) ok++;
            else if (response.Content.Headers.ContentType?.MediaType == "application/json")
                Assert.False(string.IsNullOrWhiteSpace((string?)JsonNode.Parse(body)!["error"]), path); // a reason, not just a status
        }
        Assert.True(ok > 100, $"only {ok} of {paths.Count} answered 200");
        using var traversal = await http.GetAsync("/static/..%2FR1Sharp.dll");
        Assert.Equal(HttpStatusCode.NotFound, traversal.StatusCode);
    }

    [Fact]
    public async Task TheEventStreamNamesARunWhenItsFileGrows()
    {
        using var http = new HttpClient { BaseAddress = b.Base, Timeout = Timeout.InfiniteTimeSpan };
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
        Assert.Equal("retry: 2000", await reader.ReadLineAsync(cancel.Token));
        string file = Path.Combine(b.Runs.Root, "events/metrics.jsonl");
        await File.AppendAllTextAsync(file, MetricsLog.Serialize(BoardFixtureRuns.Row(3, 1.2)) + "\n", cancel.Token);
        string id = b.Id("events");
        while (true)
        {
            string? line = await reader.ReadLineAsync(cancel.Token);
            Assert.NotNull(line);
            if (line.StartsWith("data: ") && line.Contains("\"runs\"") && line.Contains(id)) break;
        }
    }

    [Fact]
    public async Task WithAKeyEveryRouteAsksForIt()
    {
        await using var server = new BoardServer(new BoardOptions { Folders = [b.Runs.Root], Port = 0, ApiKey = "s3cret" });
        var uri = await server.StartAsync();
        using var handler = new HttpClientHandler { UseCookies = true, CookieContainer = new CookieContainer() };
        using var http = new HttpClient(handler) { BaseAddress = uri };
        foreach (var path in new[] { "/", "/api/runs", "/static/board.js", "/api/events" })
        {
            using var refused = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("needs its key", await refused.Content.ReadAsStringAsync());
        }
        using (var wrong = await http.GetAsync("/?key=nope")) Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        using (var first = await http.GetAsync("/?key=s3cret")) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        // The page's own requests carry no key: the cookie left by the first visit does.
        using (var then = await http.GetAsync("/api/runs")) Assert.Equal(HttpStatusCode.OK, then.StatusCode);
        using var script = new HttpClient { BaseAddress = uri };
        script.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "s3cret");
        using (var bearer = await script.GetAsync("/api/runs")) Assert.Equal(HttpStatusCode.OK, bearer.StatusCode);
    }
}
