using System.Diagnostics;

namespace R1Sharp.Tests.Cli;

/// <summary>Runs the real `r1` command (r1.dll beside the tests) in a child process.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000)) { p.Kill(true); throw new TimeoutException("r1 " + string.Join(' ', args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
