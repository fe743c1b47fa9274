using System.Net;
using System.Net.Sockets;
using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>
/// Hostile programs, each run only inside the local sandbox with tight limits (2 s CPU, 6 s wall, 512 MiB, 32
/// processes, 1 MiB output): each must be stopped with the right verdict and leave the host as it was — no process of
/// the run left, no file written outside, no connection made, nothing of the project read. Where this machine has no
/// namespace isolation the fixture falls back to rlimits: the resource cases still run (the rlimits and the parent's
/// kill are what stop them), the isolation cases are skipped with the reason.
/// Every case runs on both paths Python takes: the per-run sandbox and the warm fork server.
/// </summary>
public abstract class HostileProgramTests(SandboxFixture fx)
{
    protected SandboxFixture Fx => fx;

    /// <summary>Nothing of a run outlives it: killed processes may take a moment to be reaped, not longer.</summary>
    internal static void NoSurvivors()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (SandboxFixture.SandboxProcesses().Count > 0 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Empty(SandboxFixture.SandboxProcesses());
    }

    [Fact]
    public void InfiniteLoopIsStoppedByTheCpuLimit()
    {
        // A long wall limit, so that on a busy machine the CPU limit is what stops it.
        var r = fx.Run("python", "while True:\n    pass\n", limits: SandboxFixture.Tight with { WallSeconds = 60 });
        Assert.Equal(CodeVerdict.Timeout, r.Verdict);
        Assert.Contains("CPU", r.Detail);
        NoSurvivors();
    }

    [Fact]
    public void SleepingPastTheWallLimitIsStopped()
    {
        var r = fx.Run("python", "import time\ntime.sleep(600)\n");
        Assert.Equal(CodeVerdict.Timeout, r.Verdict);
        Assert.Contains("wall", r.Detail);
        Assert.True(r.Wall < TimeSpan.FromSeconds(60));
        NoSurvivors();
    }

    [NamespacesFact(orRoot: true)]
    public void ForkBombIsContainedByTheProcessLimit()
    {
        // Keeps forking whatever fails; every child does the same. The process limit caps the tree, the CPU and wall
        // limits end it, and the PID namespace takes all of it down.
        const string bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
        var r = fx.Run("python", bomb);
        Assert.Equal(CodeVerdict.Timeout, r.Verdict);
        NoSurvivors();
        // The host can still start processes.
        Assert.Equal(CodeVerdict.Passed, fx.Run("python", "print('alive')").Verdict);
    }

    [Fact]
    public void TenGigabytesOfAllocationHitsTheMemoryLimit()
    {
        var r = fx.Run("python", "x = bytearray(10 * 1024**3)\nprint(len(x))\n");
        Assert.Equal(CodeVerdict.MemoryLimit, r.Verdict);
        NoSurvivors();
    }

    [Fact]
    public void AGigabyteOfOutputHitsTheOutputLimit()
    {
        var r = fx.Run("python", "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n");
        Assert.Equal(CodeVerdict.OutputLimit, r.Verdict);
        Assert.True(r.Stdout.Length <= SandboxFixture.Tight.MaxOutputBytes);
        NoSurvivors();
    }

    [NamespacesFact]
    public void WritingOutsideTheWorkingDirectoryFails()
    {
        using var tmp = new TempDir();
        string target = tmp.File("escaped.txt");
        string program = $"""
            import os
            wrote = []
            for path in [{Py(target)}, "/usr/escaped.txt", "/escaped.txt", "/proc/escaped.txt"]:
                try:
                    with open(path, "w") as f:
                        f.write("x")
                    wrote.append(path)
                except OSError as e:
                    print("refused", path, type(e).__name__)
            with open("inside.txt", "w") as f:
                f.write("fine")
            print("wrote", wrote)
            raise SystemExit(1 if wrote else 0)
            """;
        var r = fx.Run("python", program);
        Assert.True(r.Verdict == CodeVerdict.Passed, $"{r.Verdict}: {r.Stdout} {r.Stderr}");
        Assert.Contains("wrote []", r.Stdout);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists("/usr/escaped.txt"));
        Assert.False(File.Exists("/escaped.txt"));
        NoSurvivors();
    }

    [NamespacesFact]
    public void NetworkConnectionsFail()
    {
        // A listener on the host's loopback: the sandbox has a loopback of its own, so nothing may arrive here.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        try
        {
            string program = $"""
                import socket
                for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("8.8.8.8", 53)]:
                    s = socket.socket()
                    s.settimeout(2)
                    s.connect((host, port))
                    print("connected", host)
                """;
            var r = fx.Run("python", program);
            Assert.Equal(CodeVerdict.RuntimeError, r.Verdict);
            Assert.Matches("ConnectionRefusedError|OSError|unreachable", r.Detail);
            Assert.DoesNotContain("connected", r.Stdout);
            Assert.False(listener.Pending());
        }
        finally { listener.Stop(); }
        NoSurvivors();
    }

    [NamespacesFact]
    public void TheProjectsAndTheUsersFilesAreOutOfReach()
    {
        string project = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, typeof(HostileProgramTests).Assembly.GetName().Name + ".dll"));
        Assert.True(File.Exists(project));
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var homeFiles = Directory.EnumerateFileSystemEntries(home).Select(Path.GetFileName).ToList();
        Assert.NotEmpty(homeFiles);
        // The interpreter may live under the home folder (pyenv): its own folder is mounted, nothing beside it.
        var interpreterRoots = SandboxHost.Python(fx.Sandbox.Options.Python).Folders.Concat(SandboxHost.Dotnet().Folders)
            .Where(f => f.StartsWith(home + "/")).Select(f => f[(home.Length + 1)..].Split('/')[0]).ToHashSet();
        string program = $"""
            import os
            seen = []
            for path in [{Py(project)}, {Py(SharedData.Path("GUIDE.md"))}, {Py(SharedData.Root)}, "/home", "/etc/shadow", "/etc/passwd", {Py(Environment.CurrentDirectory)}]:
                if os.path.exists(path):
                    seen.append(path)
            print("seen", seen)
            home = {Py(home)}
            try:
                print("home", sorted(os.listdir(home)))
            except OSError as e:
                print("home", [], type(e).__name__)
            """;
        var r = fx.Run("python", program);
        Assert.True(r.Verdict == CodeVerdict.Passed, $"{r.Verdict}: {r.Detail}");
        Assert.Contains("seen []", r.Stdout);
        var visibleHome = r.Stdout.Split('\n').First(l => l.StartsWith("home ")).Trim();
        foreach (var f in homeFiles.Where(f => !interpreterRoots.Contains(f!)))
            Assert.DoesNotContain("'" + f + "'", visibleHome);
        NoSurvivors();
    }

    [NamespacesFact(orRoot: true)]
    public void BackgroundChildrenDieWithTheProgram()
    {
        // The program starts a long sleeper in a new session, detached from its pipes, and exits at once.
        const string program = "import subprocess\nsubprocess.Popen(['sleep', '300'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint('left it')\n";
        var r = fx.Run("python", program);
        Assert.Equal(CodeVerdict.Passed, r.Verdict);
        NoSurvivors();
    }

    internal static string Py(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}

[Collection(SandboxCollection.Name)]
public sealed class HostileProgramsPerRunTests(PerRunSandboxFixture fixture) : HostileProgramTests(fixture), IClassFixture<PerRunSandboxFixture>
{
    [Fact]
    public void PythonTakesThePerRunPath() => Assert.False(Fx.Sandbox.UsesPythonForkServer);

    [Fact]
    public void CSharpInfiniteLoopAndAllocationAreStopped()
    {
        var loop = Fx.Run("csharp", "class P { static void Main() { long i = 0; while (true) i++; } }");
        Assert.Equal(CodeVerdict.Timeout, loop.Verdict);
        var alloc = Fx.Run("csharp", "using System.Collections.Generic; class P { static void Main() { var l = new List<byte[]>(); while (true) l.Add(new byte[1 << 24]); } }");
        Assert.True(alloc.Verdict == CodeVerdict.MemoryLimit, $"{alloc.Verdict}: {alloc.Detail} {alloc.Stderr}");
        NoSurvivors();
    }

    [Fact]
    public async Task AskingForNamespacesWhereThereAreNoneRefusesToStart()
    {
        // Where bubblewrap cannot make namespaces it says why on stderr and exits 1 (its message in a container that
        // refuses user namespaces); a sandbox asked for them must refuse to start, naming the reason, not run without.
        using var tmp = new TempDir();
        string fake = tmp.File("bwrap");
        File.WriteAllText(fake, "#!/bin/sh\necho 'bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n");
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var e = Assert.Throws<R1SharpException>(() => new LocalSandbox(new LocalSandboxOptions { Bubblewrap = fake, Concurrency = 1 }));
        Assert.Contains("namespace isolation is unavailable here", e.Message);
        Assert.Contains("No permissions to create new namespace", e.Message);
        Assert.Contains("sandbox_isolation: rlimits", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        e = Assert.Throws<R1SharpException>(() => new LocalSandbox(new LocalSandboxOptions { Bubblewrap = tmp.File("missing/bwrap"), Concurrency = 1 }));
        Assert.Contains("not found", e.Message);
        // The rlimits mode is the explicit choice that runs without them.
        using var limited = new LocalSandbox(new LocalSandboxOptions { Bubblewrap = fake, Isolation = SandboxIsolation.Rlimits, Concurrency = 1, Limits = SandboxFixture.Tight });
        Assert.Equal(CodeVerdict.Passed, (await limited.RunAsync(new CodeRun("python", "print(1)"))).Verdict);
    }

}

[Collection(SandboxCollection.Name)]
public sealed class HostileProgramsForkServerTests(SandboxFixture fixture) : HostileProgramTests(fixture), IClassFixture<SandboxFixture>
{
    [ForkServerFact]
    public void PythonTakesTheForkServerPath() => Assert.True(Fx.Sandbox.UsesPythonForkServer);
}
