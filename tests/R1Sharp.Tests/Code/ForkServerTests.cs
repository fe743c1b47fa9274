using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>
/// The Python fork server's own promises (PythonForkServer.cs): a forked child is, as far as a program can tell, a fresh
/// `python3 -E -s main.py` started on the per-run path; nothing one run does reaches the next; a program cannot reach
/// the server; a server that dies is replaced. Every run is bounded by the tight limits. The hostile programs of
/// <see cref="HostileProgramTests"/> run on this path too (<see cref="HostileProgramsForkServerTests"/>).
/// </summary>
[Collection(SandboxCollection.Name)]
public sealed class ForkServerTests(SandboxFixture fx, PerRunSandboxFixture perRun) : IClassFixture<SandboxFixture>, IClassFixture<PerRunSandboxFixture>
{
    /// <summary>What a program can see of its interpreter and process, one line per property. The uid is the slot's
    /// (either path draws slots from one pool), so only its range is printed.</summary>
    const string Probe = """
        import sys, os, signal, resource
        print("modules", sorted(sys.modules))
        main = sys.modules["__main__"]
        print("main", sorted((k, type(v).__name__, repr(v) if k != "__loader__" else "") for k, v in vars(main).items() if k not in ("sys", "os", "signal", "resource")))
        print("loader", type(__loader__).__name__, __loader__.name, __loader__.path)
        print("argv", sys.argv, sys.orig_argv[1:], sys.executable)
        print("path", sys.path)
        print("cwd", os.getcwd(), sorted(os.listdir(".")), open(__file__).read()[:10])
        print("tmp", sorted(os.listdir("/tmp")))
        print("ids", os.getpid(), os.getppid(), os.getuid() >= 2000000000, os.getuid() == os.geteuid() == os.getgid(), os.getgroups(), os.getsid(0), os.getpgrp())
        print("flags", sys.flags, sys.getrecursionlimit(), sys.getswitchinterval())
        print("env", sorted(os.environ.items()))
        print("limits", [resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_STACK")])
        print("caps", [l.strip() for l in open("/proc/self/status") if l.startswith(("Cap", "NoNewPrivs", "Seccomp:"))])
        print("proc", sorted(p for p in os.listdir("/proc") if p.isdigit()))
        print("fds", sorted(os.listdir("/proc/self/fd")))
        print("signals", [(int(s), str(signal.getsignal(s))) for s in sorted(signal.valid_signals()) if s not in (signal.SIGKILL, signal.SIGSTOP)])
        print("mask", sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        print("mounts", sorted((l.split()[1], l.split()[2] if l.split()[1] != __file__ else "(host's)") for l in open("/proc/self/mounts") if not l.split()[1].startswith("/proc/")))
        print("proc-mounts", sorted(l.split()[1] for l in open("/proc/self/mounts") if l.split()[1].startswith("/proc/")))
        print("misc", os.umask(0o22), os.uname().nodename, os.nice(0), os.sched_getaffinity(0) == set(range(os.cpu_count())) or "pinned")
        print("stdio", [(f.name, f.encoding, f.errors, f.line_buffering, f.isatty()) for f in (sys.stdin, sys.stdout, sys.stderr)], sys.stdin.read())
        import threading
        print("threads", threading.active_count(), threading.current_thread() is threading.main_thread())
        """;

    [ForkServerFact]
    public async Task AChildLooksLikeAFreshInterpreterOnThePerRunPath()
    {
        Assert.True(fx.Sandbox.UsesPythonForkServer);
        Assert.False(perRun.Sandbox.UsesPythonForkServer);
        var forked = await fx.Sandbox.RunAsync(new CodeRun("python", Probe, Stdin: "in\n"));
        var fresh = await perRun.Sandbox.RunAsync(new CodeRun("python", Probe, Stdin: "in\n"));
        Assert.True(forked.Ok, $"{forked.Verdict}: {forked.Detail} {forked.Stderr}");
        Assert.True(fresh.Ok, $"{fresh.Verdict}: {fresh.Detail} {fresh.Stderr}");
        var a = forked.Stdout.Split('\n');
        var b = fresh.Stdout.Split('\n');
        Assert.Equal(b.Length, a.Length);
        // Line by line, except the open descriptors: the per-run path leaks two of its parent's (bubblewrap's or
        // .NET's) into the program, the fork server closes everything but 0-2 (the fourth is listdir's own).
        // And the read-only mounts over parts of /proc: the fork server covers /proc/sys and /proc/sysrq-trigger as well.
        for (int i = 0; i < a.Length; i++) if (!a[i].StartsWith("fds ", StringComparison.Ordinal) && !a[i].StartsWith("proc-mounts ", StringComparison.Ordinal)) Assert.Equal(b[i], a[i]);
        Assert.Contains("fds ['0', '1', '2', '3']", forked.Stdout);
        var forkedProc = a.Single(l => l.StartsWith("proc-mounts ", StringComparison.Ordinal));
        foreach (var m in b.Single(l => l.StartsWith("proc-mounts ", StringComparison.Ordinal))["proc-mounts ".Length..].Trim('[', ']').Split(", ")) Assert.Contains(m, forkedProc);
        Assert.Contains("'/proc/sys'", forkedProc);
        Assert.Contains("ids 2 1 True True [] 1 1", forked.Stdout);
        Assert.Contains("proc ['1', '2']", forked.Stdout);
        Assert.Contains("cwd /sandbox ['main.py']", forked.Stdout);
        Assert.Contains("tmp []", forked.Stdout);
        // The process limit counts the run's PID-namespace init too: one more than the program's share, no more.
        var nproc = await fx.Sandbox.RunAsync(new CodeRun("python", "import resource; print(resource.getrlimit(resource.RLIMIT_NPROC))"));
        Assert.Equal($"({SandboxFixture.Tight.MaxProcesses + 1}, {SandboxFixture.Tight.MaxProcesses + 1})", nproc.Stdout.Trim());
    }

    [ForkServerFact]
    public async Task ErrorsAndExitsReadAsFromAFreshInterpreter()
    {
        foreach (var (program, stdin) in new[]
        {
            ("def f():\n    raise ValueError('boom')\nf()\n", ""),
            ("import sys\nsys.exit('bye')\n", ""),
            ("import sys\nsys.exit(3)\n", ""),
            ("x = (\n", ""),
            ("import atexit\natexit.register(lambda: print('at exit'))\nprint(input())\n", "typed\n"),
            ("import threading, time\ndef late():\n    time.sleep(0.2)\n    print('thread done')\nthreading.Thread(target=late).start()\n", ""),
            ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", ""),
            ("raise KeyboardInterrupt\n", ""),
            ("import sys\nsys.stdout.write('no newline')\n", ""),
        })
        {
            var forked = await fx.Sandbox.RunAsync(new CodeRun("python", program, Stdin: stdin));
            var fresh = await perRun.Sandbox.RunAsync(new CodeRun("python", program, Stdin: stdin));
            Assert.Equal((fresh.Verdict, fresh.ExitCode, fresh.Stdout, fresh.Stderr, fresh.Detail), (forked.Verdict, forked.ExitCode, forked.Stdout, forked.Stderr, forked.Detail));
        }
    }

    /// <summary>A program changes every piece of interpreter and machine state it can reach — builtins, sys.modules,
    /// the environment, files in every directory it may write to, a SysV shared-memory segment, a background process
    /// meant to write later — and the next run on the same server finds none of it.</summary>
    [ForkServerFact]
    public async Task NothingOfARunReachesTheNext()
    {
        using var sandbox = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = SandboxFixture.Tight with { CpuSeconds = 10, WallSeconds = 30 } });
        const string walk = """
            import os
            def writable_dirs():
                ro = {l.split()[1] for l in open("/proc/self/mounts") if "ro" in l.split()[3].split(",")}
                for root, dirs, files in os.walk("/"):
                    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ro and os.path.join(root, d) not in ("/proc", "/sys")]
                    if os.access(root, os.W_OK):
                        yield root
            """;
        string first = walk + "\n" + """
            import builtins, sys, ctypes, subprocess
            wrote = []
            for d in writable_dirs():
                with open(os.path.join(d, "leak-marker"), "w") as f:
                    f.write("x")
                wrote.append(d)
            builtins.len = None
            sys.modules["json"] = "poisoned"
            os.environ["LEAK"] = "1"
            sys.path.insert(0, "/leak")
            sys.setrecursionlimit(77)
            libc = ctypes.CDLL(None)
            shm = libc.shmget(0x5151, 4096, 0o1000 | 0o666)
            subprocess.Popen(["sh", "-c", "sleep 1; echo late > /tmp/late-marker; echo late > /sandbox/late-marker"], start_new_session=True)
            print("wrote", sorted(wrote), "shm", shm >= 0)
            """;
        string second = walk + "\n" + """
            import builtins, sys, ctypes, time
            time.sleep(2)  # past the background writer's second, had it survived
            found = [os.path.join(d, f) for d in writable_dirs() for f in os.listdir(d) if "marker" in f]
            libc = ctypes.CDLL(None)
            print("found", found, "len", len([1]), "json" in sys.modules, "LEAK" in os.environ, "/leak" in sys.path, sys.getrecursionlimit(), "shm", libc.shmget(0x5151, 0, 0))
            """;
        var r1 = await sandbox.RunAsync(new CodeRun("python", first));
        Assert.True(r1.Ok, $"{r1.Verdict}: {r1.Detail} {r1.Stderr}");
        Assert.Contains("/sandbox", r1.Stdout);
        Assert.Contains("/tmp", r1.Stdout);
        Assert.Contains("shm True", r1.Stdout);
        var servers = sandbox.ForkServerProcesses();
        var r2 = await sandbox.RunAsync(new CodeRun("python", second));
        Assert.True(r2.Ok, $"{r2.Verdict}: {r2.Detail} {r2.Stderr}");
        Assert.Equal("found [] len 1 False False False 1000 shm -1", r2.Stdout.Trim());
        Assert.Equal(servers, sandbox.ForkServerProcesses()); // the same server ran both
        HostileProgramTests.NoSurvivors();
    }

    /// <summary>A program kills what it can: its parent (the run's PID-namespace init), every process it may signal,
    /// and tries to open the memory of every process it sees. The run ends; the server, the same one, runs the next.</summary>
    [ForkServerFact]
    public async Task AProgramCannotReachTheServer()
    {
        using var sandbox = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = SandboxFixture.Tight });
        Assert.True((await sandbox.RunAsync(new CodeRun("python", "print(1)"))).Ok);
        var servers = sandbox.ForkServerProcesses();
        Assert.Equal(3, servers.Count); // bubblewrap, its init, the server
        const string probe = """
            import os, sys
            seen, read, signalled = [], [], []
            for p in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
                seen.append(p)
                try:
                    open("/proc/%d/mem" % p, "rb").close()
                    read.append(p)
                except OSError:
                    pass
            for p in range(3, 4096):
                try:
                    os.kill(p, 0)
                    signalled.append(p)
                except OSError:
                    pass
            print("seen", seen, "read", read, "signalled", signalled, flush=True)
            """;
        var looked = await sandbox.RunAsync(new CodeRun("python", probe));
        Assert.True(looked.Ok, $"{looked.Verdict}: {looked.Detail} {looked.Stderr}");
        // Its own memory only: pid 1 is the run's init, of the same uid but not dumpable; the server is not visible at all.
        Assert.Equal("seen [1, 2] read [2] signalled []", looked.Stdout.Trim());
        // Its parent is the run's PID-namespace init, which ignores signals from inside its namespace (SIGKILL included,
        // as on the per-run path, where bubblewrap's init is pid 1); kill(-1) reaches nothing but the program's own.
        foreach (var killer in new[] { "os.kill(os.getppid(), 9)", "os.kill(-1, 9)", "os.kill(1, 15)" })
        {
            var r = await sandbox.RunAsync(new CodeRun("python", $"import os, time\ntry:\n    {killer}\nexcept OSError as e:\n    print('refused', e.errno)\ntime.sleep(0.5)\nprint('alive', os.getppid())\n"));
            Assert.True(r.Ok, $"{killer}: {r.Verdict} {r.Detail}");
            Assert.EndsWith("alive 1", r.Stdout.Trim());
            Assert.Equal(servers, sandbox.ForkServerProcesses());
        }
        // A program whose child kills everything it may signal, the program included: the run ends, the server stays.
        var all = await sandbox.RunAsync(new CodeRun("python", "import os, time\nif os.fork() == 0:\n    os.kill(-1, 9)\n    os._exit(0)\ntime.sleep(5)\n"));
        Assert.Equal(CodeVerdict.RuntimeError, all.Verdict);
        Assert.Contains("SIGKILL", all.Detail);
        Assert.Equal(servers, sandbox.ForkServerProcesses());
        Assert.Equal("ok", (await sandbox.RunAsync(new CodeRun("python", "print('ok')"))).Stdout.Trim());
        HostileProgramTests.NoSurvivors();
    }

    /// <summary>A server killed between runs is replaced and the run goes to the new one; a server killed during a run
    /// fails that run (a runtime error naming the server), and the next run gets a new server.</summary>
    [ForkServerFact]
    public async Task ADeadServerIsReplaced()
    {
        using var sandbox = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = SandboxFixture.Tight });
        Assert.True((await sandbox.RunAsync(new CodeRun("python", "print(1)"))).Ok);
        var first = sandbox.ForkServerProcesses();
        SandboxHost.Kill(first[^1]); // the Python server itself
        var r = await sandbox.RunAsync(new CodeRun("python", "print(2)"));
        Assert.True(r.Ok, $"{r.Verdict}: {r.Detail}");
        Assert.Equal("2", r.Stdout.Trim());
        var second = sandbox.ForkServerProcesses();
        Assert.Equal(3, second.Count);
        Assert.Empty(second.Intersect(first));

        var sleeping = sandbox.RunAsync(new CodeRun("python", "import time\nprint('started', flush=True)\ntime.sleep(30)\n"));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (SandboxFixture.SandboxProcesses().Count == 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        SandboxHost.Kill(second[^1]);
        var died = await sleeping.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(CodeVerdict.RuntimeError, died.Verdict);
        Assert.Contains("fork server", died.Detail);
        Assert.Equal("3", (await sandbox.RunAsync(new CodeRun("python", "print(3)"))).Stdout.Trim());
        Assert.Empty(sandbox.ForkServerProcesses().Intersect(second));
        HostileProgramTests.NoSurvivors();
    }

    [ForkServerFact]
    public async Task ServersEndWithTheSandbox()
    {
        var sandbox = new LocalSandbox(new LocalSandboxOptions { Concurrency = 2, Limits = SandboxFixture.Tight });
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => sandbox.RunAsync(new CodeRun("python", "import time\ntime.sleep(0.2)"))));
        var pids = sandbox.ForkServerProcesses();
        Assert.InRange(pids.Count, 3, 6); // one or two servers: at most one per slot
        sandbox.Dispose();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (pids.Any(Alive) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.DoesNotContain(pids, Alive);

        static bool Alive(int pid)
        {
            try { return !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z "); }
            catch (IOException) { return false; }
        }
    }
}
