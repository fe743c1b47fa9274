using System.Diagnostics;
using System.Globalization;

namespace R1Sharp.Code;

/// <summary>
/// The bubblewrap command line of one sandboxed run (namespace isolation). The new root is an empty tmpfs holding:
/// /usr and the merged-/usr links (or real /bin, /lib… folders) read-only, the few /etc files the dynamic loader reads,
/// the interpreter's own folders read-only, a fresh /proc of the new PID namespace, a minimal /dev, a size-limited tmpfs
/// /tmp and a size-limited tmpfs working directory /sandbox with the program's files bound read-only into it. Nothing
/// else of the host: not /home, /root, /work, the project or the user's files. New mount, PID, network (loopback only),
/// IPC and UTS namespaces; a user namespace too unless we are root, in which case the program runs under a uid of its
/// own (setpriv), which also makes RLIMIT_NPROC count. --die-with-parent and the PID namespace take every process of
/// the run down when it ends or is killed. --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that
/// started bwrap exits, not the process: every sandbox is started from one long-lived thread (<see cref="ChildProcess"/>).
/// </summary>
public static class Bubblewrap
{
    public const string WorkDir = "/sandbox";

    static readonly string[] EtcFiles = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime"];

    /// <summary>The bubblewrap executable: the path given, else `bwrap` on PATH; null when there is none.</summary>
    public static string? Find(string? path = null) => SandboxHost.Which(path ?? "bwrap");

    /// <summary>/usr, the top-level links or folders beside it and the loader's /etc files: the same for every run.</summary>
    static readonly Lazy<List<string>> SystemMounts = new(() =>
    {
        var a = new List<string> { "--ro-bind", "/usr", "/usr" };
        foreach (var top in new[] { "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32" })
        {
            var info = new FileInfo(top);
            if (info.LinkTarget is { } target) a.AddRange(["--symlink", target, top]);
            else if (Directory.Exists(top)) a.AddRange(["--ro-bind", top, top]);
        }
        foreach (var etc in EtcFiles) if (File.Exists(etc) || Directory.Exists(etc)) a.AddRange(["--ro-bind", etc, etc]);
        return a;
    });

    /// <param name="files">host file → name inside the working directory</param>
    /// <param name="inner">the command run inside (prlimit …), already complete</param>
    /// <param name="capabilities">as root: the only capabilities the command keeps (the Python fork server's); null keeps
    /// bubblewrap's default, which the per-run path's setpriv then drops entirely</param>
    public static List<string> Arguments(IReadOnlyList<string> folders, IReadOnlyList<(string Host, string Name)> files, SandboxLimits limits, bool root, IReadOnlyList<string> inner,
        IReadOnlyList<string>? capabilities = null)
    {
        var a = new List<string> { "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
            "--die-with-parent", "--new-session" };
        if (!root) a.AddRange(["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]);
        else if (capabilities is not null)
        {
            a.AddRange(["--cap-drop", "ALL"]);
            foreach (var cap in capabilities) a.AddRange(["--cap-add", cap]);
        }
        a.AddRange(SystemMounts.Value);
        // bubblewrap creates the folders above a mount point with the host's modes: under /root (pyenv) that is 0700, which
        // the run's uid cannot cross, and the interpreter then runs without its own standard library. Empty folders of
        // 0755 in the sandbox's own root instead: nothing of the host's folder is visible either way.
        var parents = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var f in folders)
            for (var d = Path.GetDirectoryName(f); d is not null && d != "/"; d = Path.GetDirectoryName(d)) parents.Add(d);
        foreach (var d in parents) a.AddRange(["--perms", "0755", "--dir", d]);
        foreach (var f in folders) a.AddRange(["--ro-bind", f, f]);
        a.AddRange(["--proc", "/proc", "--dev", "/dev"]);
        string size = limits.WorkdirBytes.ToString(CultureInfo.InvariantCulture);
        a.AddRange(["--size", size, "--perms", "1777", "--tmpfs", "/tmp"]);
        a.AddRange(["--size", size, "--perms", "0777", "--tmpfs", WorkDir]);
        foreach (var (host, name) in files) a.AddRange(["--ro-bind", host, WorkDir + "/" + name]);
        a.AddRange(["--chdir", WorkDir, "--"]);
        a.AddRange(inner);
        return a;
    }

    static readonly object probeGate = new();
    static readonly Dictionary<string, string> probed = new(); // bwrap → "" (works) or the reason it does not

    /// <summary>Runs `true` in a sandbox as a real run would be built, once per process; null when namespace isolation
    /// works here, else why not (bwrap missing, user namespaces disabled, not permitted in this container…).</summary>
    public static string? Unavailable(string bwrap, string prlimit, string? setpriv)
    {
        lock (probeGate)
        {
            if (probed.TryGetValue(bwrap, out var known)) return known.Length == 0 ? null : known;
            string result;
            var inner = new List<string> { prlimit, "--nproc=16", "--" };
            if (setpriv is not null) inner.AddRange([setpriv, "--reuid=" + SandboxUids.Probe, "--regid=" + SandboxUids.Probe, "--clear-groups", "--", "/usr/bin/true"]);
            else inner.Add("/usr/bin/true");
            var psi = new ProcessStartInfo(bwrap) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in Arguments([], [], new SandboxLimits(), SandboxHost.IsRoot, inner)) psi.ArgumentList.Add(arg);
            try
            {
                using var p = Process.Start(psi)!;
                var err = p.StandardError.ReadToEndAsync();
                if (!p.WaitForExit(30_000)) { p.Kill(true); result = "bwrap did not finish a trivial run within 30 s"; }
                else result = p.ExitCode == 0 ? "" : $"bwrap failed ({Excerpt.Quote(err.Result.Trim(), 200)})";
            }
            catch (System.ComponentModel.Win32Exception e) { result = $"could not start {bwrap} ({e.Message})"; }
            probed[bwrap] = result;
            return result.Length == 0 ? null : result;
        }
    }
}

/// <summary>The uids sandboxed programs run under when R1Sharp is root: one per concurrent slot and per R1Sharp process
/// (derived from the process id), far above the ranges that /etc/passwd and container sub-uid maps use, so a run's
/// processes are exactly that uid's processes (RLIMIT_NPROC counts them; the rlimits-only mode kills them all).
/// Slots are taken from one pool per process, so two sandboxes in one process never share a uid.</summary>
public static class SandboxUids
{
    public const uint Base = 2_000_000_000;
    public const int MaxSlots = 64;
    public static uint For(int slot) => Base + (uint)((Environment.ProcessId % 4_000_000) * MaxSlots + slot);
    public static string Probe => (Base - 1).ToString(CultureInfo.InvariantCulture);

    static readonly SemaphoreSlim free = new(MaxSlots);
    static readonly System.Collections.Concurrent.ConcurrentQueue<int> slots = new(Enumerable.Range(0, MaxSlots));

    public static async Task<int> TakeAsync(CancellationToken cancel)
    {
        await free.WaitAsync(cancel).ConfigureAwait(false);
        slots.TryDequeue(out int slot);
        return slot;
    }

    public static void Return(int slot)
    {
        slots.Enqueue(slot);
        free.Release();
    }
}
