namespace R1Sharp.Code;

/// <summary>Settings that choose and configure an executor, as the recipe (code_provider, sandbox_*) and the command
/// line (--sandbox, --sandbox-endpoint, …) give them.</summary>
public sealed record CodeExecutorSettings
{
    /// <summary>local, piston or sandbox_fusion.</summary>
    public string Provider { get; init; } = "local";
    public string Endpoint { get; init; } = "";
    public SandboxIsolation Isolation { get; init; } = SandboxIsolation.Namespaces;
    /// <summary>0: the cores (local) or 8 (a service).</summary>
    public int Concurrency { get; init; }
    public SandboxLimits Limits { get; init; } = new();
    public string Python { get; init; } = "python3";
    /// <summary>Local: more languages as command lines. Services: their names for our languages.</summary>
    public IReadOnlyDictionary<string, string>? Languages { get; init; }
}

/// <summary>Builds the executor that <see cref="CodeExecutorSettings"/> names.</summary>
public static class CodeExecutors
{
    public static ICodeExecutor Create(CodeExecutorSettings s) => s.Provider switch
    {
        "local" => new LocalSandbox(new LocalSandboxOptions
        {
            Isolation = s.Isolation, Concurrency = s.Concurrency > 0 ? s.Concurrency : Environment.ProcessorCount, Limits = s.Limits, Python = s.Python,
            Commands = s.Languages,
        }),
        "piston" => new PistonSandbox(Remote(s)),
        "sandbox_fusion" or "sandboxfusion" => new SandboxFusionSandbox(Remote(s)),
        _ => throw new R1SharpException($"sandbox \"{s.Provider}\" is unknown (expected local, piston or sandbox_fusion)"),
    };

    static RemoteSandboxOptions Remote(CodeExecutorSettings s)
    {
        if (s.Endpoint.Length == 0) throw new R1SharpException($"sandbox {s.Provider} needs an endpoint (sandbox_endpoint / --sandbox-endpoint)");
        return new RemoteSandboxOptions { Endpoint = s.Endpoint, Concurrency = s.Concurrency > 0 ? s.Concurrency : 8, Limits = s.Limits, LanguageNames = s.Languages };
    }

    /// <summary>The executor a GRPO recipe asks for.</summary>
    public static CodeExecutorSettings FromRecipe(Training.GrpoConfig c) => new()
    {
        Provider = c.CodeProvider, Endpoint = c.SandboxEndpoint, Isolation = SandboxIsolationNames.Parse(c.SandboxIsolation), Concurrency = c.ParallelCodeExecPerProc,
        Limits = new SandboxLimits { CpuSeconds = c.SandboxCpuSeconds, WallSeconds = c.SandboxTimeout, MemoryBytes = (long)c.SandboxMemoryMb << 20 },
        Languages = c.CodeLanguages.Count > 0 ? c.CodeLanguages : null,
    };
}
