using System.CommandLine;
using R1Sharp.Code;

namespace R1Sharp.Cli;

/// <summary>--sandbox, --sandbox-endpoint, --sandbox-isolation, --sandbox-timeout, --sandbox-concurrency: where code
/// problems' programs run (r1 eval, r1 sample).</summary>
public sealed class SandboxArgs
{
    public readonly Option<string> Provider = new("--sandbox") { Description = "where code runs: local (this machine, isolated), piston or sandbox_fusion (a service at --sandbox-endpoint)", DefaultValueFactory = _ => "local" };
    public readonly Option<string?> Endpoint = new("--sandbox-endpoint") { Description = "the sandbox service's base URL" };
    public readonly Option<string> Isolation = new("--sandbox-isolation") { Description = "local sandbox: namespaces (bubblewrap; refused where unavailable) or rlimits (limits only, for trusted code)", DefaultValueFactory = _ => "namespaces" };
    public readonly Option<double> Timeout = new("--sandbox-timeout") { Description = "seconds of CPU and of wall time a program may take", DefaultValueFactory = _ => 10 };
    public readonly Option<int> MemoryMb = new("--sandbox-memory-mb") { Description = "memory a program may use, MiB", DefaultValueFactory = _ => 1024 };
    public readonly Option<int> Concurrency = new("--sandbox-concurrency") { Description = "programs run at once (0: the cores, or 8 for a service)", DefaultValueFactory = _ => 0 };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Provider, Endpoint, Isolation, Timeout, MemoryMb, Concurrency }) c.Options.Add(o);
    }

    public ICodeExecutor Create(ParseResult p)
    {
        double t = p.GetValue(Timeout);
        var limits = new SandboxLimits { CpuSeconds = t, WallSeconds = t, MemoryBytes = (long)p.GetValue(MemoryMb) << 20 };
        limits.Validate("--sandbox-timeout/--sandbox-memory-mb");
        return CodeExecutors.Create(new CodeExecutorSettings
        {
            Provider = p.GetValue(Provider)!, Endpoint = p.GetValue(Endpoint) ?? "", Isolation = SandboxIsolationNames.Parse(p.GetValue(Isolation)!, "--sandbox-isolation"),
            Concurrency = p.GetValue(Concurrency), Limits = limits,
        });
    }
}
