using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Threading.Channels;

namespace R1Sharp.Code;

/// <summary>
/// One warm Python interpreter inside a long-lived bubblewrap sandbox that forks a fresh child per program
/// (forkserver.py, embedded), so that a run pays neither an interpreter start nor bubblewrap's namespace set-up. Used
/// by <see cref="LocalSandbox"/> for Python when R1Sharp runs as root with namespace isolation (README, "Sandbox").
/// <para>What the isolation of a run rests on:</para>
/// <list type="bullet">
/// <item>The server's sandbox is the per-run path's: bubblewrap's mount, PID, network, IPC, UTS and cgroup namespaces, a
/// read-only /usr and interpreter, none of the user's or the project's files. The server keeps only the capabilities it
/// needs (SYS_ADMIN for the run's namespaces and mounts, SETUID/SETGID/SETPCAP to drop them, KILL) and is non-dumpable
/// (PR_SET_DUMPABLE 0: no ptrace, no /proc/PID/mem).</item>
/// <item>Each run forks into new mount, PID and IPC namespaces of its own: fresh tmpfs on the working directory
/// (/sandbox, holding only main.py) and on /tmp, gone when the run ends; its own /proc, in which the server is not
/// visible; no SysV IPC objects shared with other runs.</item>
/// <item>The program runs as the slot's uid (not the server's), with no capabilities (bounding, inheritable, permitted
/// and ambient sets empty), no_new_privs, in a session of the run's own (its init's), under its own rlimits (CPU, address space, data,
/// processes, file size, open files, no core) and the host's wall clock and output cap.</item>
/// <item>When the program's process exits, the PID namespace's init exits and the kernel kills everything the program
/// left running; the server then kills whatever of the run is still alive in its own namespace (everything but
/// bubblewrap's init and itself), also on the host's kill (wall or output limit), before it reports the run done.</item>
/// <item>The child is a copy of the pristine server: nothing a program does in its memory reaches the next run. The
/// modules the server imported (os, struct, select, ctypes, resource) are dropped from the child's sys.modules, which is
/// then exactly a fresh `python3 -E -s main.py`'s, as are __main__, sys.argv, sys.path[0] and the cwd (tests compare).
/// Shared between runs of one server: the network namespace (loopback only; nothing of a run outlives it to listen),
/// the slot uid's kernel keyring (as on the per-run path) and the interpreter's hash seed (a fresh interpreter draws
/// one per run).</item>
/// <item>A server that dies, stops answering or breaks the protocol is killed with its sandbox and replaced; a run that
/// had not started is retried once on the new server.</item>
/// </list>
/// </summary>
public sealed class PythonForkServer : IDisposable
{
    /// <summary>What the server keeps of root's capabilities (bubblewrap --cap-add; all others are dropped).</summary>
    public static readonly string[] Capabilities = ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL"];

    static readonly Lazy<string> script = new(() =>
    {
        using var s = typeof(PythonForkServer).Assembly.GetManifestResourceStream("forkserver.py")
            ?? throw new InvalidOperationException("forkserver.py is not embedded in the assembly");
        return new StreamReader(s).ReadToEnd();
    });

    readonly Process process;
    readonly Stream input;
    readonly Channel<(byte Kind, byte[] Data)> frames = Channel.CreateBounded<(byte, byte[])>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });
    readonly StringBuilder serverErrors = new();
    ulong sequence;

    /// <summary>False once the server died, broke the protocol or was killed: it must be replaced.</summary>
    public bool Healthy { get; private set; } = true;

    static readonly System.Collections.Concurrent.ConcurrentDictionary<PythonForkServer, byte> live = new();

    /// <summary>Host pids of every live server's own processes in this R1Sharp process (tests exclude them when they look
    /// for anything of a run left behind: a server outlives runs by design and carries the run marker).</summary>
    public static IReadOnlyList<int> AllProcessIds() => live.Keys.SelectMany(s => s.ProcessIds()).ToList();

    PythonForkServer(Process process)
    {
        this.process = process;
        live[this] = 0;
        input = process.StandardInput.BaseStream;
        _ = Task.Run(PumpAsync);
        _ = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await process.StandardError.ReadAsync(buffer).ConfigureAwait(false)) > 0)
                lock (serverErrors) { serverErrors.Append(buffer, 0, n); if (serverErrors.Length > 8192) serverErrors.Remove(0, serverErrors.Length - 8192); }
        });
    }

    /// <summary>bubblewrap's process (outside the sandbox): the one the host kills to end the server and everything in it.</summary>
    public int Pid => process.Id;

    /// <summary>Starts a server and waits for it to say it is ready.</summary>
    public static async Task<PythonForkServer> StartAsync(string bwrap, SandboxHost.Interpreter python, IReadOnlyDictionary<string, string> environment, CancellationToken cancel)
    {
        var inner = new List<string> { python.Executable, "-E", "-s", "-c", script.Value };
        var argv = Bubblewrap.Arguments(python.Folders, [], new SandboxLimits { WorkdirBytes = 1 << 20 }, root: true, inner, Capabilities);
        var psi = new ProcessStartInfo(bwrap)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = "/",
        };
        foreach (var a in argv) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        var p = new Process { StartInfo = psi };
        try { await ChildProcess.Spawner.StartAsync(p).ConfigureAwait(false); }
        catch (System.ComponentModel.Win32Exception e) { p.Dispose(); throw new R1SharpException($"local sandbox: could not start {bwrap} ({e.Message})"); }
        var server = new PythonForkServer(p);
        using var ready = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        ready.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            var (kind, data) = await server.frames.Reader.ReadAsync(ready.Token).ConfigureAwait(false);
            if (kind != (byte)'R' || data.Length != 4) throw new InvalidDataException($"unexpected first frame {(char)kind}");
            return server;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException or InvalidDataException && !cancel.IsCancellationRequested)
        {
            server.Dispose();
            await Task.Delay(100, CancellationToken.None).ConfigureAwait(false); // the last of its stderr
            throw new R1SharpException($"local sandbox: the Python fork server did not start ({(e is OperationCanceledException ? "no answer within 60 s" : e.Message)}): {Excerpt.Quote(server.Errors.Trim(), 300)}");
        }
    }

    /// <summary>The end of what the server wrote to its stderr (its own failures; runs have their own stderr).</summary>
    public string Errors { get { lock (serverErrors) return serverErrors.ToString(); } }

    /// <summary>What a run came to. <see cref="Started"/> false: the server failed before the program was forked (the
    /// caller may retry on a new server); <see cref="Failure"/> set: the server failed, the outcome is unknown;
    /// <see cref="SetUpFailure"/> set: the server could not set a run up (a mount, the uid change, an rlimit), which is
    /// the machine's problem, not the program's.</summary>
    public sealed record Result(ChildOutcome? Outcome, bool Started, string? Failure, string? SetUpFailure = null);

    public async Task<Result> RunAsync(byte[] source, string? stdin, SandboxLimits limits, uint uid, CancellationToken cancel)
    {
        if (!Healthy || process.HasExited) return Fail(false, "the server had exited");
        ulong seq = ++sequence;
        byte[] stdinBytes = Encoding.UTF8.GetBytes(stdin ?? "");
        long cpu = (long)Math.Ceiling(limits.CpuSeconds);
        // RLIMIT_NPROC counts the run's PID-namespace init too, which runs as the run's uid: one more than the program's share.
        var header = new byte[4 + 8 + 4 + 8 * 8 + 4 + 4];
        "R1RQ"u8.CopyTo(header);
        var span = header.AsSpan(4);
        BinaryPrimitives.WriteUInt64LittleEndian(span, seq); span = span[8..];
        BinaryPrimitives.WriteUInt32LittleEndian(span, uid); span = span[4..];
        foreach (long v in new[] { cpu, cpu + 1, limits.MemoryBytes, limits.MemoryBytes, limits.MaxProcesses + 1L, limits.MaxFileBytes, limits.MaxOpenFiles, limits.WorkdirBytes })
        { BinaryPrimitives.WriteUInt64LittleEndian(span, (ulong)v); span = span[8..]; }
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)source.Length); span = span[4..];
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)stdinBytes.Length);

        var sw = Stopwatch.StartNew();
        try
        {
            await input.WriteAsync(header, cancel).ConfigureAwait(false);
            await input.WriteAsync(source, cancel).ConfigureAwait(false);
            await input.WriteAsync(stdinBytes, cancel).ConfigureAwait(false);
            await input.FlushAsync(cancel).ConfigureAwait(false);
        }
        catch (IOException e) { return Fail(false, $"could not send the program ({e.Message})"); }

        // The server acknowledges once the program's process exists.
        using (var ack = CancellationTokenSource.CreateLinkedTokenSource(cancel))
        {
            ack.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                var (kind, data) = await frames.Reader.ReadAsync(ack.Token).ConfigureAwait(false);
                if (kind != (byte)'S' || data.Length != 8 || BinaryPrimitives.ReadUInt64LittleEndian(data) != seq) return Fail(false, $"protocol broken (frame {(char)kind})");
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested) { return Fail(false, "no answer within 30 s"); }
            catch (ChannelClosedException) { return Fail(false, "the server ended"); }
        }

        var stdout = new MemoryStream();
        var stderr = new MemoryStream();
        long total = 0;
        int stopped = 0; // 1 = wall, 2 = output
        int? code = null;
        string? setUp = null;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(TimeSpan.FromSeconds(limits.WallSeconds));
        CancellationTokenSource? grace = null;
        try
        {
            while (true)
            {
                (byte Kind, byte[] Data) frame;
                try { frame = await frames.Reader.ReadAsync((grace ?? deadline).Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (grace is null)
                {
                    stopped = cancel.IsCancellationRequested ? 3 : 1;
                    await KillRunAsync().ConfigureAwait(false);
                    grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    continue;
                }
                catch (OperationCanceledException) { return Fail(true, "the run was not stopped within 10 s of the kill"); }
                catch (ChannelClosedException) { return Fail(true, "the server ended during the run"); }
                switch (frame.Kind)
                {
                    case (byte)'O':
                    case (byte)'E':
                        total += frame.Data.Length;
                        var keep = frame.Kind == (byte)'O' ? stdout : stderr;
                        long keepMax = frame.Kind == (byte)'O' ? limits.MaxOutputBytes : ChildProcess.StderrKept;
                        int room = (int)Math.Max(0, Math.Min(frame.Data.Length, keepMax - keep.Length));
                        if (room > 0) keep.Write(frame.Data, 0, room);
                        if (total > limits.MaxOutputBytes && stopped == 0)
                        {
                            stopped = 2;
                            await KillRunAsync().ConfigureAwait(false);
                            grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                        }
                        break;
                    case (byte)'F':
                        setUp = Encoding.UTF8.GetString(frame.Data);
                        break;
                    case (byte)'X' when frame.Data.Length == 12 && BinaryPrimitives.ReadUInt64LittleEndian(frame.Data) == seq:
                        code = BinaryPrimitives.ReadInt32LittleEndian(frame.Data.AsSpan(8));
                        cancel.ThrowIfCancellationRequested();
                        if (setUp is not null) return new Result(null, true, null, setUp);
                        return new Result(new ChildOutcome(stopped == 0 ? code : null, Decode(stdout), Decode(stderr), sw.Elapsed, stopped == 1, stopped == 2), true, null);
                    default:
                        return Fail(true, $"protocol broken (frame {(char)frame.Kind})");
                }
            }
        }
        finally { grace?.Dispose(); }
    }

    async Task KillRunAsync()
    {
        try
        {
            await input.WriteAsync("K"u8.ToArray()).ConfigureAwait(false);
            await input.FlushAsync().ConfigureAwait(false);
        }
        catch (IOException) { Kill(); }
    }

    Result Fail(bool started, string why)
    {
        Kill();
        return new Result(null, started, $"the Python fork server failed: {why}");
    }

    /// <summary>Ends the server and everything in its sandbox (bubblewrap, its init, the server, any run).</summary>
    void Kill()
    {
        Healthy = false;
        try { if (!process.HasExited) process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    async Task PumpAsync()
    {
        var s = process.StandardOutput.BaseStream;
        var head = new byte[5];
        try
        {
            while (true)
            {
                await s.ReadExactlyAsync(head).ConfigureAwait(false);
                int length = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(1));
                if (length < 0 || length > 1 << 20) throw new InvalidDataException($"frame of {length} bytes");
                var data = new byte[length];
                await s.ReadExactlyAsync(data).ConfigureAwait(false);
                await frames.Writer.WriteAsync((head[0], data)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or InvalidDataException or ObjectDisposedException or ChannelClosedException)
        {
            frames.Writer.TryComplete();
            if (e is InvalidDataException) Kill();
        }
    }

    /// <summary>Host pids of the server's own processes (bubblewrap, its init, the server, all running as root), for
    /// tests that look for anything of a run left behind.</summary>
    public IReadOnlyList<int> ProcessIds()
    {
        var ids = new List<int>();
        if (process.HasExited) return ids;
        ids.Add(process.Id);
        foreach (int init in Children(process.Id))
        {
            ids.Add(init);
            foreach (int server in Children(init))
                if (Uid(server) == 0) ids.Add(server);
        }
        return ids;

        static IEnumerable<int> Children(int pid)
        {
            try { return File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList(); }
            catch (IOException) { return []; }
        }
        static uint? Uid(int pid)
        {
            try
            {
                var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
                return line is null ? null : uint.Parse(line[4..].Split('\t', StringSplitOptions.RemoveEmptyEntries)[0]);
            }
            catch (IOException) { return null; }
        }
    }

    static string Decode(MemoryStream s) => Encoding.UTF8.GetString(s.GetBuffer(), 0, (int)s.Length);

    public void Dispose()
    {
        live.TryRemove(this, out _);
        Kill();
        try { input.Dispose(); } catch (IOException) { }
        process.Dispose();
    }
}
