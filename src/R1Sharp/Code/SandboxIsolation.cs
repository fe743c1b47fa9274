namespace R1Sharp.Code;

/// <summary>
/// How strongly the local sandbox separates a program from the machine (README, "Sandbox").
/// <list type="bullet">
/// <item><see cref="Namespaces"/> (the default): bubblewrap puts the program in new mount, PID, network, IPC and UTS
/// namespaces (and a user namespace when R1Sharp is not root; as root the program runs under an unprivileged uid of its
/// own): it sees a read-only /usr and its interpreter, a fresh size-limited working directory and /tmp, no network,
/// none of the user's or the project's files, and dies with all its children when the run ends. rlimits on top.</item>
/// <item><see cref="Rlimits"/>: only the resource limits, a fresh working directory and a killed process group (every
/// process of the run's uid when root). The program can read what the user can and use the network. For machines
/// without user namespaces, and only for code you trust.</item>
/// </list>
/// A sandbox asked for <see cref="Namespaces"/> where they cannot be had refuses to start; it never falls back.
/// </summary>
public enum SandboxIsolation { Namespaces, Rlimits }

public static class SandboxIsolationNames
{
    public static SandboxIsolation Parse(string text, string source = "sandbox_isolation") => text.Trim().ToLowerInvariant() switch
    {
        "namespaces" or "bwrap" or "bubblewrap" => SandboxIsolation.Namespaces,
        "rlimits" => SandboxIsolation.Rlimits,
        _ => throw new R1SharpException($"{source} \"{text}\" is unknown (expected namespaces or rlimits)"),
    };
}
