using System.Diagnostics;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Board;

/// <summary>The real `r1 board` process: it prints its address, serves the page, and refuses bad folders in one line.</summary>
public class BoardCommandTests
{
    [Fact]
    public async Task TheCommandPrintsItsAddressAndServesThePage()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("run"));
        File.WriteAllText(dir.File("run/metrics.jsonl"), "{\"step\":1,\"loss\":2.5}\n");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "r1.dll"), "board", dir.Path, "--port", "0" }) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string? url = await process.StandardOutput.ReadLineAsync(cancel.Token);
            Assert.NotNull(url);
            Assert.Matches(@"^http://127\.0\.0\.1:\d+/$", url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            Assert.Contains("<title>r1 board</title>", await http.GetStringAsync("/", cancel.Token));
            string runs = await http.GetStringAsync("/api/runs", cancel.Token);
            Assert.Contains("\"kind\":\"sft\"", runs); // a loss without rewards: an SFT run
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public void AMissingFolderIsOneClearLine()
    {
        var r = CliRunner.Run("board", "/nonexistent/runs");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: /nonexistent/runs: no such folder", r.Stderr.Trim());
    }
}
