using System.Diagnostics;
using System.Text;

namespace R1Sharp.Code;

/// <summary>What a child process did: exit code (null when we stopped it), its output (stdout up to the cap, the start
/// of stderr) and whether we stopped it for running too long or printing too much.</summary>
public sealed record ChildOutcome(int? ExitCode, string Stdout, string Stderr, TimeSpan Wall, bool WallExceeded, bool OutputExceeded);

/// <summary>
/// Starts one sandbox command with an exact argument vector (no shell), a fixed environment, stdin fed and closed,
/// stdout and stderr drained concurrently and counted, and a wall-clock deadline. Past the deadline or the output cap
/// it calls <c>stop</c> (which kills the whole sandbox) and keeps draining until the pipes close; after a normal exit
/// it calls <c>stop</c> too, so background children the program left behind end with it.
/// </summary>
public static class ChildProcess
{
    /// <summary>Bytes of stderr kept: enough for a traceback's first and last lines.</summary>
    public const int StderrKept = 16 << 10;

    public static async Task<ChildOutcome> RunAsync(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, string workingDirectory,
        string? stdin, long maxOutput, TimeSpan wall, Action<Process> stop, Action<Process>? started = null, CancellationToken cancel = default)
    {
        var psi = new ProcessStartInfo(argv[0])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var arg in argv.Skip(1)) psi.ArgumentList.Add(arg);
        psi.Environment.Clear();
        foreach (var (k, v) in environment) psi.Environment[k] = v;

        var sw = Stopwatch.StartNew();
        using var p = new Process { StartInfo = psi };
        try { await Spawner.StartAsync(p).ConfigureAwait(false); }
        catch (System.ComponentModel.Win32Exception e) { throw new R1SharpException($"local sandbox: could not start {argv[0]} ({e.Message})"); }
        started?.Invoke(p);

        long total = 0;
        int stopped = 0; // 1 = wall, 2 = output
        void Stop(int why)
        {
            if (Interlocked.CompareExchange(ref stopped, why, 0) == 0) { try { stop(p); } catch (InvalidOperationException) { } }
        }
        var stdout = new MemoryStream();
        var stderr = new MemoryStream();
        async Task Drain(Stream s, MemoryStream keep, long keepMax)
        {
            var buffer = new byte[64 << 10];
            int n;
            while ((n = await s.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                long now = Interlocked.Add(ref total, n);
                int room = (int)Math.Max(0, Math.Min(n, keepMax - keep.Length));
                if (room > 0) keep.Write(buffer, 0, room);
                if (now > maxOutput) Stop(2);
            }
        }
        var outTask = Drain(p.StandardOutput.BaseStream, stdout, maxOutput);
        var errTask = Drain(p.StandardError.BaseStream, stderr, StderrKept);
        var inTask = Task.Run(async () =>
        {
            try
            {
                if (!string.IsNullOrEmpty(stdin)) await p.StandardInput.BaseStream.WriteAsync(Encoding.UTF8.GetBytes(stdin)).ConfigureAwait(false);
                p.StandardInput.Close();
            }
            catch (IOException) { } // the program exited or closed stdin without reading it all
            catch (ObjectDisposedException) { }
        });

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(wall);
        try
        {
            await p.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            // The program is done: whatever it left running in the background goes with it.
            try { stop(p); } catch (InvalidOperationException) { }
        }
        catch (OperationCanceledException)
        {
            Stop(1);
            // Killing the sandbox ends every process in it; the pipes then close. A bounded wait in case they do not.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await p.WaitForExitAsync(grace.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
        // Pipes close when the last process holding them is gone (the sandbox's teardown kills stragglers).
        var drained = Task.WhenAll(outTask, errTask, inTask);
        if (await Task.WhenAny(drained, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false) != drained)
        {
            Stop(stopped == 0 ? 1 : stopped);
            await Task.WhenAny(drained, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        }
        sw.Stop();
        cancel.ThrowIfCancellationRequested();
        int? code = p.HasExited && stopped == 0 ? p.ExitCode : null;
        return new ChildOutcome(code, Decode(stdout), Decode(stderr), sw.Elapsed, stopped == 1, stopped == 2);
    }

    /// <summary>
    /// Starts every sandbox process from one thread that lives as long as R1Sharp. bubblewrap's --die-with-parent is
    /// PR_SET_PDEATHSIG, and Linux sends that signal when the parent *thread* exits: a sandbox forked from a thread-pool
    /// thread that then ended was killed mid-run (seen in the tests as a passing program reported "killed (SIGKILL)").
    /// .NET forks from the calling thread, so the thread that starts a sandbox must outlive it.
    /// </summary>
    internal static class Spawner
    {
        static readonly System.Collections.Concurrent.BlockingCollection<(Process Process, TaskCompletionSource Started)> queue = new();

        static Spawner() => new Thread(() =>
        {
            foreach (var (p, started) in queue.GetConsumingEnumerable())
            {
                try { p.Start(); started.SetResult(); }
                catch (Exception e) { started.SetException(e); }
            }
        }) { IsBackground = true, Name = "r1sharp sandbox spawner" }.Start();

        public static Task StartAsync(Process p)
        {
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            queue.Add((p, started));
            return started.Task;
        }
    }

    static string Decode(MemoryStream s) => Encoding.UTF8.GetString(s.GetBuffer(), 0, (int)s.Length);
}
