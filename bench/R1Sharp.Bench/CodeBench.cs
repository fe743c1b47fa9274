using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Code;

namespace R1Sharp.Bench;

/// <summary>
/// The sandbox's cost. (1) HumanEval's 164 canonical programs (prompt + solution + test + check), run one after another
/// in the local sandbox (bubblewrap namespaces + rlimits, one slot; through the Python fork server and on the per-run path) against the same programs run by the same
/// interpreter with the same flags as plain child processes in a loop: the isolation overhead, target ≤ 1.3×; then the
/// sandbox with one slot per core. (2) MultiPL-E's C# problems, k solutions each, compiled by Roslyn and run, with the
/// harness cache on and off. Rounds alternate sandboxed and plain so that a busy machine slows both alike.
/// </summary>
public static class CodeBench
{
    public static int Run(string sharedDir, string[] args)
    {
        int rounds = args.SkipWhile(a => a != "--rounds").Skip(1).Select(int.Parse).FirstOrDefault(3);
        string pythonCommand = args.SkipWhile(a => a != "--python").Skip(1).FirstOrDefault() ?? "python3";
        var rows = File.ReadLines(Path.Combine(sharedDir, "benchmarks", "humaneval.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var programs = rows.Select(r => r["prompt"]!.GetValue<string>() + r["canonical_solution"]!.GetValue<string>() + "\n" + r["test"]!.GetValue<string>()
            + "\n" + $"check({r["entry_point"]!.GetValue<string>()})\n").ToList();
        var limits = new SandboxLimits { CpuSeconds = 10, WallSeconds = 30 };
        // The per-run path (one bubblewrap + interpreter per program) and the warm fork servers (PythonForkServer).
        using var one = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = limits, Python = pythonCommand, PythonForkServer = false });
        using var all = new LocalSandbox(new LocalSandboxOptions { Concurrency = Environment.ProcessorCount, Limits = limits, Python = pythonCommand, PythonForkServer = false });
        using var served = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = limits, Python = pythonCommand });
        using var servedAll = new LocalSandbox(new LocalSandboxOptions { Concurrency = Environment.ProcessorCount, Limits = limits, Python = pythonCommand });
        if (!served.UsesPythonForkServer) Console.WriteLine("note: the Python fork server is not used here (it needs root and namespace isolation): both sandboxed rows are the per-run path");
        var python = SandboxHost.Python(pythonCommand);

        var dir = Directory.CreateTempSubdirectory("r1sharp-bench-");
        try { return Measure(sharedDir, programs, limits, one, all, served, servedAll, python, dir, rounds); }
        finally { dir.Delete(recursive: true); }
    }

    static int Measure(string sharedDir, List<string> programs, SandboxLimits limits, LocalSandbox one, LocalSandbox all, LocalSandbox served, LocalSandbox servedAll,
        SandboxHost.Interpreter python, DirectoryInfo dir, int rounds)
    {
        var files = programs.Select((p, i) => { string f = Path.Combine(dir.FullName, $"p{i}.py"); File.WriteAllText(f, p); return f; }).ToList();

        // Warm-up: the interpreter's files in the page cache, the sandbox's probe done.
        Plain(python.Executable, files.Take(8).ToList());
        Sandboxed(one, programs.Take(8).ToList());
        // The fork servers start here (one per slot), outside the timed rounds: they live as long as the sandbox.
        Sandboxed(served, programs.Take(8).ToList());
        Sandboxed(servedAll, programs.Take(8).ToList());

        var plain = new List<double>();
        var boxed = new List<double>();
        var boxedAll = new List<double>();
        var server = new List<double>();
        var serverAll = new List<double>();
        var load = new List<string> { LoadAverage() };
        for (int r = 0; r < rounds; r++)
        {
            // Alternating plain and sandboxed, so that a change in the machine's load falls on both.
            plain.Add(Plain(python.Executable, files));
            server.Add(Sandboxed(served, programs));
            boxed.Add(Sandboxed(one, programs));
            serverAll.Add(Sandboxed(servedAll, programs));
            boxedAll.Add(Sandboxed(all, programs));
            Console.WriteLine($"round {r + 1}: plain {plain[^1]:F2} s, fork server {server[^1]:F2} s, per-run {boxed[^1]:F2} s, fork server x{Environment.ProcessorCount} {serverAll[^1]:F2} s, " +
                              $"per-run x{Environment.ProcessorCount} {boxedAll[^1]:F2} s (load {LoadAverage()})");
            load.Add(LoadAverage());
        }
        double plainRate = programs.Count / Median(plain), boxedRate = programs.Count / Median(boxed), allRate = programs.Count / Median(boxedAll);
        double serverRate = programs.Count / Median(server), serverAllRate = programs.Count / Median(serverAll);
        Console.WriteLine($"HumanEval canonical programs, {rounds} rounds (median): plain python3 loop {plainRate:F1}/s; fork server (1 slot) {serverRate:F1}/s " +
                          $"-> overhead {plainRate / serverRate:F2}x (target <= 1.30); per-run sandbox (1 slot) {boxedRate:F1}/s -> {plainRate / boxedRate:F2}x; " +
                          $"{Environment.ProcessorCount} slots: fork server {serverAllRate:F1}/s, per-run {allRate:F1}/s");

        // C#: k = 4 distinct solutions per problem (distinct, so that no compiled program is reused).
        var cs = File.ReadLines(Path.Combine(sharedDir, "benchmarks", "humaneval_cs.jsonl")).Select(l => CodeRows.Parse(JsonNode.Parse(l)!.AsObject(), "humaneval_cs")!.Spec).Take(20).ToList();
        var jobs = cs.SelectMany(s => Enumerable.Range(0, 4).Select(j => (Spec: s, Body: $"        throw new NotImplementedException(\"sample {j}\");"))).ToList();
        CSharpCompiler.Warm();
        // Warm-up of Roslyn's own code (JIT) on other problems, both ways, so that neither measurement pays for it.
        var warm = File.ReadLines(Path.Combine(sharedDir, "benchmarks", "humaneval_cs.jsonl")).Skip(100).Take(4)
            .Select(l => (CodeRows.Parse(JsonNode.Parse(l)!.AsObject(), "humaneval_cs")!.Spec, "        throw new NotImplementedException();")).ToList();
        CSharp(warm, cacheHarness: true, limits, run: false);
        CSharp(warm, cacheHarness: false, limits, run: false);
        var uncached = CSharp(jobs, cacheHarness: false, limits);
        var cached = CSharp(jobs, cacheHarness: true, limits);
        Console.WriteLine($"C# ({jobs.Count} programs, {cs.Count} problems x 4): compile {jobs.Count / cached.Compile:F1}/s with the harness cache, " +
                          $"{jobs.Count / uncached.Compile:F1}/s without ({uncached.Compile / cached.Compile:F2}x); compile+run {jobs.Count / cached.Total:F1}/s with, {jobs.Count / uncached.Total:F1}/s without");

        var result = new
        {
            bench = "code-sandbox", cores = Environment.ProcessorCount, rounds, programs = programs.Count, python = python.Executable,
            load_average = load,
            plain_python_per_second = plainRate, fork_server_per_second = serverRate, fork_server_all_slots_per_second = serverAllRate, overhead = plainRate / serverRate,
            per_run_sandboxed_per_second = boxedRate, per_run_sandboxed_all_slots_per_second = allRate, per_run_overhead = plainRate / boxedRate,
            fork_server_used = served.UsesPythonForkServer,
            csharp_programs = jobs.Count, csharp_compile_per_second_cached = jobs.Count / cached.Compile, csharp_compile_per_second_uncached = jobs.Count / uncached.Compile,
            csharp_compile_run_per_second_cached = jobs.Count / cached.Total, csharp_compile_run_per_second_uncached = jobs.Count / uncached.Total,
        };
        string json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(json);
        string results = Path.Combine("bench", "results");
        if (Directory.Exists(results)) File.WriteAllText(Path.Combine(results, "code-sandbox.json"), json + "\n");
        return 0;
    }

    /// <summary>The 1-, 5- and 15-minute load averages (/proc/loadavg), to print beside every figure.</summary>
    static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    static double Median(List<double> xs) => xs.OrderBy(x => x).ElementAt(xs.Count / 2);

    /// <summary>Seconds to run every program as a plain child process, one after another, as `python3 -E -s file`.</summary>
    static double Plain(string python, List<string> files)
    {
        var sw = Stopwatch.StartNew();
        foreach (var f in files)
        {
            var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(f)! };
            foreach (var a in new[] { "-E", "-s", f }) psi.ArgumentList.Add(a);
            // The sandbox's environment, so that both run the interpreter the same way (site hooks may read variables).
            psi.Environment.Clear();
            foreach (var (k, v) in new Dictionary<string, string> { ["PATH"] = "/usr/local/bin:/usr/bin:/bin", ["LANG"] = "C.UTF-8", ["LC_ALL"] = "C.UTF-8",
                ["TMPDIR"] = "/tmp", ["HOME"] = Path.GetDirectoryName(f)!, ["PYTHONDONTWRITEBYTECODE"] = "1", ["PYTHONHASHSEED"] = "0" }) psi.Environment[k] = v;
            using var p = Process.Start(psi)!;
            var o = p.StandardOutput.ReadToEndAsync();
            var e = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{f}: {e.Result}");
        }
        return sw.Elapsed.TotalSeconds;
    }

    static double Sandboxed(LocalSandbox sandbox, List<string> programs)
    {
        var sw = Stopwatch.StartNew();
        var results = Task.WhenAll(programs.Select(p => sandbox.RunAsync(new CodeRun("python", p)))).GetAwaiter().GetResult();
        double s = sw.Elapsed.TotalSeconds;
        if (results.FirstOrDefault(r => !r.Ok) is { } bad) throw new InvalidOperationException($"a canonical program did not pass in the sandbox: {bad.Verdict} {bad.Detail}");
        return s;
    }

    /// <summary>Seconds spent compiling (in process) and in total (compile + run in the sandbox), one slot.</summary>
    static (double Compile, double Total) CSharp(List<(CodeSpec Spec, string Body)> jobs, bool cacheHarness, SandboxLimits limits, bool run = true)
    {
        using var sandbox = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = limits, CacheCSharpHarness = cacheHarness });
        var compiler = new CSharpCompiler(cacheHarness);
        var sw = Stopwatch.StartNew();
        foreach (var (spec, body) in jobs)
            if (compiler.Compile(spec.Solution(body, chat: false)!.Value.Source, spec.Harness).Assembly is null) throw new InvalidOperationException("did not compile");
        double compile = sw.Elapsed.TotalSeconds;
        if (!run) return (compile, compile);
        sw.Restart();
        foreach (var (spec, body) in jobs)
        {
            var r = sandbox.RunAsync(new CodeRun("csharp", spec.Solution(body, chat: false)!.Value.Source, spec.Harness)).GetAwaiter().GetResult();
            if (r.Verdict != CodeVerdict.RuntimeError) throw new InvalidOperationException($"expected NotImplementedException, got {r.Verdict} {r.Detail}");
        }
        return (compile, sw.Elapsed.TotalSeconds);
    }
}
