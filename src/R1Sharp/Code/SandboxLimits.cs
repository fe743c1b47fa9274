namespace R1Sharp.Code;

/// <summary>
/// Resource limits of one program run. CPU time, memory, processes, file size and open files are rlimits
/// (setrlimit, applied by prlimit inside the sandbox); wall time and output are enforced by the parent, which kills the
/// whole sandbox when either is exceeded; the working directory is a tmpfs of <see cref="WorkdirBytes"/> under the
/// namespace isolation.
/// </summary>
public sealed record SandboxLimits
{
    /// <summary>RLIMIT_CPU: SIGXCPU at this many seconds of CPU, SIGKILL one second later.</summary>
    public double CpuSeconds { get; init; } = 10;
    /// <summary>Wall-clock seconds from start to exit; catches sleeping and blocked programs that use no CPU.</summary>
    public double WallSeconds { get; init; } = 20;
    /// <summary>RLIMIT_DATA and RLIMIT_AS per process (for .NET: RLIMIT_DATA, a GC heap limit of ¾ of it, and RLIMIT_AS
    /// with 4 GiB of headroom for what the runtime reserves without using).</summary>
    public long MemoryBytes { get; init; } = 1L << 30;
    /// <summary>RLIMIT_NPROC: processes and threads of the sandbox's user (counted inside the sandbox's user namespace,
    /// or for its own uid when R1Sharp runs as root).</summary>
    public int MaxProcesses { get; init; } = 64;
    /// <summary>stdout and stderr together; past it the run is stopped with <see cref="CodeVerdict.OutputLimit"/>.</summary>
    public long MaxOutputBytes { get; init; } = 4L << 20;
    /// <summary>RLIMIT_FSIZE: the largest file the program may write.</summary>
    public long MaxFileBytes { get; init; } = 16L << 20;
    /// <summary>Size of the writable working directory and /tmp (tmpfs, each) under namespace isolation.</summary>
    public long WorkdirBytes { get; init; } = 64L << 20;
    /// <summary>RLIMIT_NOFILE.</summary>
    public int MaxOpenFiles { get; init; } = 256;

    public void Validate(string source = "sandbox")
    {
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(double.IsFinite(CpuSeconds) && CpuSeconds > 0 && CpuSeconds <= 3600, $"CPU time limit must be in (0, 3600] seconds, got {CpuSeconds}");
        Check(double.IsFinite(WallSeconds) && WallSeconds > 0 && WallSeconds <= 86400, $"wall time limit must be in (0, 86400] seconds, got {WallSeconds}");
        Check(MemoryBytes >= 16L << 20, $"memory limit must be at least 16 MiB, got {MemoryBytes} bytes");
        Check(MaxProcesses >= 1, $"process limit must be ≥ 1, got {MaxProcesses}");
        Check(MaxOutputBytes >= 1024, $"output limit must be at least 1 KiB, got {MaxOutputBytes} bytes");
        Check(MaxFileBytes >= 0 && WorkdirBytes >= 1L << 20, "file size limit must be ≥ 0 and the working directory at least 1 MiB");
        Check(MaxOpenFiles >= 16, $"open file limit must be ≥ 16, got {MaxOpenFiles}");
    }
}
