using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.BadInput;

/// <summary>
/// Runs every row of <see cref="BadInputRows"/>: a command must exit non-zero with one error line that names what is
/// wrong, no stack trace, at most a few hundred bytes, within a bounded time; a request to `r1 serve` must get its 4xx
/// with one OpenAI error object naming the field, equally short.
/// </summary>
public class BadInputTests(BadInputWorld world) : IClassFixture<BadInputWorld>
{
    const int MaxErrorBytes = 600;
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(90); // a hang fails the row; a test never times speed

    [Theory]
    [MemberData(nameof(BadInputRows.CliRows), MemberType = typeof(BadInputRows))]
    public void ACommandGivesOneLineNamingTheProblem(int row, string description)
    {
        var r = BadInputRows.All[row];
        using var run = CliRunner.Start(r.Args.Select(world.Expand).ToArray());
        var result = run.WaitForExit(Bound) ?? throw new TimeoutException($"r1 {description}: still running after {Bound.TotalSeconds} s");
        string err = result.Stderr.TrimEnd();
        string context = $"r1 {description}\nexit {result.ExitCode}\nstderr: {err}\nstdout: {result.Stdout}";
        Assert.True(result.ExitCode is > 0 and < 128, context);
        var errorLines = err.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
        Assert.True(errorLines.Length == 1, context);
        Assert.True(errorLines[0].Contains(world.Expand(r.Names), StringComparison.Ordinal), $"the error does not name \"{world.Expand(r.Names)}\"\n{context}");
        Assert.DoesNotMatch(@"(?m)^\s+at |Exception:|--- End of", err);
        Assert.True(Encoding.UTF8.GetByteCount(err) <= MaxErrorBytes, $"{Encoding.UTF8.GetByteCount(err)} bytes on stderr\n{context}");
        Assert.DoesNotContain(err, c => char.IsControl(c) && c is not '\n' and not '\r');
    }

    [Theory]
    [MemberData(nameof(BadInputRows.HttpRows), MemberType = typeof(BadInputRows))]
    public async Task ARequestGetsItsStatusAndOneErrorObjectNamingTheField(int row, string description)
    {
        var r = BadInputRows.All[row];
        using var http = new HttpClient { Timeout = Bound };
        using var content = new StringContent(world.Expand(r.Body), Encoding.UTF8, "application/json");
        using var rsp = await http.PostAsync(new Uri(world.Server!.BaseAddress, r.Path), content);
        string body = await rsp.Content.ReadAsStringAsync();
        string context = $"{description}\n{(int)rsp.StatusCode} {body}";
        Assert.True((int)rsp.StatusCode == r.Status, context);
        var error = (JsonNode.Parse(body) as JsonObject)?["error"] as JsonObject;
        Assert.True(error is not null, context);
        Assert.Contains(world.Expand(r.Names), $"{error["message"]} {error["param"]} {error["code"]}");
        Assert.True(Encoding.UTF8.GetByteCount(body) <= MaxErrorBytes, $"{Encoding.UTF8.GetByteCount(body)} bytes\n{context}");
        // The server is still well: /health answers.
        Assert.Equal("ok", (string?)JsonNode.Parse(await http.GetStringAsync(new Uri(world.Server.BaseAddress, "/health")))!["status"]);
    }
}
