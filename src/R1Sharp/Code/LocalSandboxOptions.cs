namespace R1Sharp.Code;

/// <summary>Settings of the local sandbox (recipe keys sandbox_*; see the README's Sandbox section).</summary>
public sealed record LocalSandboxOptions
{
    public SandboxIsolation Isolation { get; init; } = SandboxIsolation.Namespaces;
    /// <summary>The bubblewrap executable (namespace isolation): null finds `bwrap` on PATH.</summary>
    public string? Bubblewrap { get; init; }
    /// <summary>Programs run at once; default: the machine's cores.</summary>
    public int Concurrency { get; init; } = Environment.ProcessorCount;
    public SandboxLimits Limits { get; init; } = new();
    /// <summary>The Python interpreter: a name on PATH or a path (a pyenv shim or venv resolves to the real one).</summary>
    public string Python { get; init; } = "python3";
    /// <summary>More languages as command lines: {"ruby": "ruby {file}"}.</summary>
    public IReadOnlyDictionary<string, string>? Commands { get; init; }
    /// <summary>Run Python through warm fork servers (<see cref="R1Sharp.Code.PythonForkServer"/>) instead of one bubblewrap sandbox and
    /// interpreter per program. Takes effect with namespace isolation when R1Sharp runs as root and Python is the
    /// built-in language; otherwise every program runs on the per-run path.</summary>
    public bool PythonForkServer { get; init; } = true;
    /// <summary>Cache the compilation of a C# test harness across solutions (bench/ measures it off).</summary>
    public bool CacheCSharpHarness { get; init; } = true;

    public void Validate()
    {
        if (Concurrency < 1 || Concurrency > SandboxUids.MaxSlots) throw new R1SharpException($"sandbox concurrency must be 1..{SandboxUids.MaxSlots}, got {Concurrency}");
        Limits.Validate();
    }
}
