using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>One local sandbox (two slots, tight limits) shared by a test class: every program the tests run — hostile
/// ones included — runs in it, bounded by CPU, wall, memory, process and output limits. Namespace isolation where this
/// machine has it; where it has not (no bubblewrap, user namespaces refused), the rlimits mode with the reason in
/// <see cref="NoNamespaces"/>: the tests that need namespaces are then skipped, naming it (<see cref="NamespacesFactAttribute"/>),
/// and the rest run bounded by the rlimits alone. Python runs through the warm fork servers where the sandbox uses them
/// (the default: root with namespaces); <see cref="PerRunSandboxFixture"/> is the same sandbox with one bubblewrap and
/// interpreter per program.</summary>
public class SandboxFixture : IDisposable
{
    public SandboxFixture() : this(forkServer: true) { }

    protected SandboxFixture(bool forkServer) =>
        Sandbox = new(new LocalSandboxOptions { Isolation = Isolation, Concurrency = Math.Min(2, Environment.ProcessorCount), Limits = Tight, PythonForkServer = forkServer });

    /// <summary>Null when namespace isolation works here, else why not (probed once per test process).</summary>
    public static readonly string? NoNamespaces = LocalSandbox.NamespaceIsolationProblem();
    public static readonly SandboxIsolation Isolation = NoNamespaces is null ? SandboxIsolation.Namespaces : SandboxIsolation.Rlimits;

    public static readonly SandboxLimits Tight = new()
    {
        CpuSeconds = 2, WallSeconds = 6, MemoryBytes = 512L << 20, MaxProcesses = 32, MaxOutputBytes = 1 << 20, MaxFileBytes = 4 << 20, WorkdirBytes = 16 << 20,
    };

    public LocalSandbox Sandbox { get; }

    /// <summary>Which path Python programs take here, for messages.</summary>
    public string PythonPath => Sandbox.UsesPythonForkServer ? "fork server" : "per-run sandbox";

    public RunResult Run(string language, string source, string? harness = null, string? stdin = null, SandboxLimits? limits = null) =>
        Sandbox.RunAsync(new CodeRun(language, source, harness, stdin, limits)).GetAwaiter().GetResult();

    /// <summary>Processes on this machine that belong to this test process's sandbox runs — by their uid (one of this
    /// process's sandbox uids, when root), by bubblewrap's command line carrying such a uid, or by the marker every run's
    /// environment carries (<see cref="LocalSandbox.RunMarker"/>, which finds them as an ordinary user too): none may
    /// outlive its run. The fork servers' own processes (bubblewrap, its init, the server) outlive runs by design and are
    /// left out — by their pids, so that anything of a run, which runs under a sandbox uid, is still found.</summary>
    public static List<int> SandboxProcesses()
    {
        var servers = PythonForkServer.AllProcessIds().ToHashSet();
        string marker = LocalSandbox.RunMarker + "=" + Environment.ProcessId + "\0";
        uint first = SandboxUids.For(0), last = SandboxUids.For(SandboxUids.MaxSlots - 1);
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || servers.Contains(pid)) continue;
            try
            {
                var uidLine = File.ReadLines(Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("Uid:"));
                if (uidLine is not null && uint.TryParse(uidLine[4..].Split('\t', StringSplitOptions.RemoveEmptyEntries)[0], out uint u)
                    && u >= first && u <= last) { found.Add(pid); continue; }
                // bubblewrap's own processes run as root: they carry the run's uid on their command line.
                var cmd = File.ReadAllText(Path.Combine(dir, "cmdline"));
                int at = cmd.IndexOf("--reuid=", StringComparison.Ordinal);
                if (at >= 0 && uint.TryParse(new string(cmd[(at + 8)..].TakeWhile(char.IsDigit).ToArray()), out uint r) && r >= first && r <= last) { found.Add(pid); continue; }
                if (pid != Environment.ProcessId && (File.ReadAllText(Path.Combine(dir, "environ")) + "\0").Contains("\0" + marker, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    public void Dispose() => Sandbox.Dispose();
}

/// <summary>The sandbox with Python on the per-run path (one bubblewrap and interpreter per program).</summary>
public sealed class PerRunSandboxFixture : SandboxFixture
{
    public PerRunSandboxFixture() : base(forkServer: false) { }
}

/// <summary>The sandbox's test classes run one after another: the hostile-program tests look for survivors among the
/// sandbox uids of this process, which another class's runs would be.</summary>
[CollectionDefinition(Name)]
public sealed class SandboxCollection
{
    public const string Name = "sandbox";
}

/// <summary>A test that needs the sandbox's namespace isolation (files, network, sessions out of reach): skipped, with
/// the reason, on a machine where namespaces cannot be had, instead of passing on the weaker rlimits mode.
/// <paramref name="orRoot"/>: the rlimits mode suffices when the tests run as root (each run has a uid of its own, so
/// RLIMIT_NPROC counts only its processes and every one of them can be found and killed).</summary>
public sealed class NamespacesFactAttribute : FactAttribute
{
    public NamespacesFactAttribute(bool orRoot = false)
    {
        if (SandboxFixture.NoNamespaces is { } why && !(orRoot && SandboxHost.IsRoot))
            Skip = $"needs the sandbox's namespace isolation, which this machine lacks ({why})";
    }
}

/// <summary>A test of the Python fork server itself: skipped, with the reason, where the sandbox does not use it (it
/// needs namespace isolation and root, for a uid per run distinct from the server's).</summary>
public sealed class ForkServerFactAttribute : FactAttribute
{
    public ForkServerFactAttribute()
    {
        if (SandboxFixture.NoNamespaces is { } why) Skip = $"the Python fork server needs the sandbox's namespace isolation, which this machine lacks ({why})";
        else if (!SandboxHost.IsRoot) Skip = "the Python fork server runs only when R1Sharp is root (a uid per run, distinct from the server's); Python takes the per-run path here";
    }
}
