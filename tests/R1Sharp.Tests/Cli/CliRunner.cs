using System.Diagnostics;

namespace R1Sharp.Tests.Cli;

/// <summary>Runs the real `r1` command (r1.dll beside the tests) in a child process.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        using var p = Start(args);
        return p.WaitForExit(TimeSpan.FromMinutes(5)) ?? throw new TimeoutException("r1 " + string.Join(' ', args));
    }

    /// <summary>Starts `r1 args` and returns at once, for a test that kills it.</summary>
    public static Running Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return new Running(Process.Start(psi)!, args);
    }

    public sealed class Running : IDisposable
    {
        readonly Process _process;
        readonly Task<string> _stdout, _stderr;
        public string[] Args { get; }

        public Running(Process process, string[] args)
        {
            _process = process;
            Args = args;
            _process.StandardInput.Close();
            // Drained from the start: a child blocked on a full pipe would never reach the moment a test waits for.
            _stdout = _process.StandardOutput.ReadToEndAsync();
            _stderr = _process.StandardError.ReadToEndAsync();
        }

        public bool HasExited => _process.HasExited;

        /// <summary>The result once the process has exited, or null after the timeout (the process is then killed).</summary>
        public Result? WaitForExit(TimeSpan timeout)
        {
            if (!_process.WaitForExit(timeout)) { Kill(); return null; }
            _process.WaitForExit(); // and the output pipes drained
            return new Result(_process.ExitCode, _stdout.Result, _stderr.Result);
        }

        /// <summary>SIGKILL (on Unix Process.Kill sends SIGKILL): no handler, no flush, no finally block runs.</summary>
        public void Kill()
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } // already exited
            _process.WaitForExit();
        }

        public void Dispose()
        {
            if (!_process.HasExited) Kill();
            _process.Dispose();
        }
    }
}
