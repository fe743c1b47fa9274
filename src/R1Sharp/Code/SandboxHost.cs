using System.Diagnostics;
using System.Runtime.InteropServices;

namespace R1Sharp.Code;

/// <summary>
/// What this machine offers the local sandbox: whether we are root, where util-linux's prlimit/setpriv/setsid and
/// bubblewrap are, the real interpreter behind `python3` (a pyenv shim or a venv resolves to its executable and
/// prefixes, which the sandbox mounts read-only) and the .NET installation that runs compiled C#.
/// </summary>
public static partial class SandboxHost
{
    [LibraryImport("libc", SetLastError = true)] private static partial uint geteuid();
    [LibraryImport("libc", SetLastError = true)] private static partial int kill(int pid, int sig);

    public static bool IsLinux => OperatingSystem.IsLinux();
    public static bool IsRoot => IsLinux && geteuid() == 0;

    /// <summary>SIGKILL to one process; errors (already gone) are ignored.</summary>
    public static void Kill(int pid) { if (IsLinux && pid > 1) kill(pid, 9); }

    /// <summary>SIGKILL to a process group.</summary>
    public static void KillGroup(int pgid) { if (IsLinux && pgid > 1) kill(-pgid, 9); }

    /// <summary>SIGKILL to every process whose real uid is <paramref name="uid"/> (read from /proc), repeated until none
    /// is left or a few rounds have passed, so a fork that races the sweep is caught by the next round.</summary>
    public static void KillAllOfUid(uint uid)
    {
        for (int round = 0; round < 8; round++)
        {
            int found = 0;
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
                try
                {
                    bool zombie = false;
                    foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                    {
                        if (line.StartsWith("State:", StringComparison.Ordinal)) zombie = line.Contains('Z'); // dead, waiting to be reaped
                        else if (line.StartsWith("Uid:", StringComparison.Ordinal))
                        {
                            var fields = line[4..].Split('\t', StringSplitOptions.RemoveEmptyEntries);
                            if (!zombie && fields.Length > 0 && uint.TryParse(fields[0], out uint u) && u == uid) { kill(pid, 9); found++; }
                            break;
                        }
                    }
                }
                catch (IOException) { } // the process ended while we looked
                catch (UnauthorizedAccessException) { }
            }
            if (found == 0) return;
            Thread.Sleep(5);
        }
    }

    /// <summary>An executable by name: an absolute path as given, else the first match on PATH, then /usr/bin and /bin.</summary>
    public static string? Which(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? Path.GetFullPath(name) : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/bin", "/bin", "/usr/sbin"]);
        foreach (var d in dirs)
        {
            string p = Path.Combine(d, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>The path with every symlink resolved.</summary>
    public static string RealPath(string path)
    {
        var info = new FileInfo(path);
        return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
    }

    /// <summary>A util-linux tool the sandbox needs (prlimit, setpriv, setsid).</summary>
    public static string Tool(string name) => Which(name)
        ?? throw new R1SharpException($"local sandbox: `{name}` (util-linux) not found on PATH; it sets the resource limits. Install util-linux");

    /// <summary>A resolved interpreter: the executable to run and the folders it needs to see (prefixes outside /usr).</summary>
    public sealed record Interpreter(string Executable, IReadOnlyList<string> Folders);

    static readonly Dictionary<string, Interpreter> pythons = new();

    /// <summary>Asks `python3` (or the command given) for sys.executable, sys.prefix and sys.base_prefix, once per
    /// process. This runs the user's own interpreter unsandboxed with a fixed one-line script.</summary>
    public static Interpreter Python(string command)
    {
        lock (pythons)
        {
            if (pythons.TryGetValue(command, out var known)) return known;
            string exe = Which(command) ?? throw new R1SharpException($"local sandbox: Python interpreter \"{command}\" not found on PATH");
            var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-E", "-s", "-S", "-c", "import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix); print(sys.version_info[0])" })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi) ?? throw new R1SharpException($"local sandbox: could not start {exe}");
            var outTask = p.StandardOutput.ReadToEndAsync();
            var errTask = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(60_000)) { try { p.Kill(true); } catch { } throw new R1SharpException($"local sandbox: {exe} did not answer within 60 s"); }
            var lines = outTask.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (p.ExitCode != 0 || lines.Length < 4 || lines[3] != "3")
                throw new R1SharpException($"local sandbox: \"{command}\" is not a working Python 3 ({Excerpt.Quote(errTask.Result.Trim() + outTask.Result.Trim())})");
            string real = RealPath(lines[0]);
            var folders = new List<string> { Path.GetDirectoryName(real)! };
            foreach (var prefix in lines.Skip(1).Take(2)) folders.Add(prefix);
            // A venv's executable is a symlink into the base installation: both folders are needed.
            folders.Add(Path.GetDirectoryName(lines[0])!);
            var interp = new Interpreter(lines[0], Outside(folders));
            pythons[command] = interp;
            return interp;
        }
    }

    /// <summary>The `dotnet` host that runs compiled C#, and its installation folder.</summary>
    public static Interpreter Dotnet()
    {
        string? root = null;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") root = Path.GetDirectoryName(RealPath(self));
        root ??= Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } env && File.Exists(Path.Combine(env, "dotnet")) ? env : null;
        // The running runtime lives in ROOT/shared/Microsoft.NETCore.App/VERSION/.
        root ??= Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        string host = Path.Combine(root, "dotnet");
        if (!File.Exists(host))
            host = Which("dotnet") is { } onPath ? RealPath(onPath) : throw new R1SharpException("local sandbox: the `dotnet` host (to run compiled C#) was not found; set DOTNET_ROOT");
        root = Path.GetDirectoryName(host)!;
        return new Interpreter(host, Outside([root]));
    }

    /// <summary>An executable named by a recipe's command line, and the installation folder it needs when it lives
    /// outside /usr (the parent of its bin folder, or its own folder).</summary>
    public static Interpreter Command(string name)
    {
        string exe = Which(name) ?? throw new R1SharpException($"local sandbox: \"{name}\" (from code_languages) not found on PATH");
        string real = RealPath(exe);
        string dir = Path.GetDirectoryName(real)!;
        string home = Path.GetFileName(dir) == "bin" ? Path.GetDirectoryName(dir)! : dir;
        return new Interpreter(real, Outside([home]));
    }

    /// <summary>Folders not already visible in the sandbox (under /usr), without duplicates or nesting.</summary>
    static List<string> Outside(IEnumerable<string> folders)
    {
        var list = folders.Select(f => Path.GetFullPath(f).TrimEnd('/')).Where(f => f.Length > 0 && f != "/usr" && !f.StartsWith("/usr/", StringComparison.Ordinal)
            && !f.StartsWith("/bin", StringComparison.Ordinal) && !f.StartsWith("/lib", StringComparison.Ordinal) && Directory.Exists(f)).Distinct().OrderBy(f => f.Length).ToList();
        var kept = new List<string>();
        foreach (var f in list) if (!kept.Any(k => f.StartsWith(k + "/", StringComparison.Ordinal))) kept.Add(f);
        if (kept.Any(k => k == "/" || k == "/root" || k == "/home" || k == "/etc"))
            throw new R1SharpException($"local sandbox: an interpreter lives in {kept.First(k => k is "/" or "/root" or "/home" or "/etc")}, which cannot be mounted into the sandbox without exposing the user's files; install it in its own folder");
        return kept;
    }
}
