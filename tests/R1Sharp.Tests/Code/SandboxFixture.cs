using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>One local sandbox (namespace isolation, two slots, tight limits) shared by a test class: every program the
/// tests run — hostile ones included — runs in it, bounded by CPU, wall, memory, process and output limits.</summary>
public sealed class SandboxFixture : IDisposable
{
    public static readonly SandboxLimits Tight = new()
    {
        CpuSeconds = 2, WallSeconds = 6, MemoryBytes = 512L << 20, MaxProcesses = 32, MaxOutputBytes = 1 << 20, MaxFileBytes = 4 << 20, WorkdirBytes = 16 << 20,
    };

    public LocalSandbox Sandbox { get; } = new(new LocalSandboxOptions { Concurrency = Math.Min(2, Environment.ProcessorCount), Limits = Tight });

    public RunResult Run(string language, string source, string? harness = null, string? stdin = null, SandboxLimits? limits = null) =>
        Sandbox.RunAsync(new CodeRun(language, source, harness, stdin, limits)).GetAwaiter().GetResult();

    /// <summary>Processes on this machine that run under one of this test process's sandbox uids: none may outlive
    /// its run.</summary>
    public static List<int> SandboxProcesses()
    {
        uint first = SandboxUids.For(0), last = SandboxUids.For(SandboxUids.MaxSlots - 1);
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var uidLine = File.ReadLines(Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("Uid:"));
                if (uidLine is not null && uint.TryParse(uidLine[4..].Split('\t', StringSplitOptions.RemoveEmptyEntries)[0], out uint u)
                    && u >= first && u <= last) { found.Add(pid); continue; }
                // bubblewrap's own processes run as root: they carry the run's uid on their command line.
                var cmd = File.ReadAllText(Path.Combine(dir, "cmdline"));
                int at = cmd.IndexOf("--reuid=", StringComparison.Ordinal);
                if (at >= 0 && uint.TryParse(new string(cmd[(at + 8)..].TakeWhile(char.IsDigit).ToArray()), out uint r) && r >= first && r <= last) found.Add(pid);
            }
            catch (IOException) { }
        }
        return found;
    }

    public void Dispose() => Sandbox.Dispose();
}

/// <summary>The sandbox's test classes run one after another: the hostile-program tests look for survivors among the
/// sandbox uids of this process, which another class's runs would be.</summary>
[CollectionDefinition(Name)]
public sealed class SandboxCollection
{
    public const string Name = "sandbox";
}
