using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Code;

namespace R1Sharp.Bench;

/// <summary>
/// The sandbox's cost. (1) HumanEval's 164 canonical programs (prompt + solution + test + check), run one after another
/// in the local sandbox (bubblewrap namespaces + rlimits, one slot) against the same programs run by the same
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
        using var one = new LocalSandbox(new LocalSandboxOptions { Concurrency = 1, Limits = limits, Python = pythonCommand });
        using var all = new LocalSandbox(new LocalSandboxOptions { Concurrency = Environment.ProcessorCount, Limits = limits, Python = pythonCommand });
        var python = SandboxHost.Python(pythonCommand);

        var dir = Directory.CreateTempSubdirectory("r1sharp-bench-");
        try { return Measure(sharedDir, programs, limits, one, all, python, dir, rounds); }
        finally { dir.Delete(recursive: true); }
    }

    static int Measure(string sharedDir, List<string> programs, SandboxLimits limits, LocalSandbox one, LocalSandbox all, SandboxHost.Interpreter python, DirectoryInfo dir, int rounds)
    {
        var files = programs.Select((p, i) => { string f = Path.Combine(dir.FullName, $"p{i}.py"); File.WriteAllText(f, p); return f; }).ToList();

        // Warm-up: the interpreter's files in the page cache, the sandbox's probe done.
        Plain(python.Executable, files.Take(8).ToList());
        Sandboxed(one, programs.Take(8).ToList());

        var plain = new List<double>();
        var boxed = new List<double>();
        var boxedAll = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            plain.Add(Plain(python.Executable, files));
            boxed.Add(Sandboxed(one, programs));
            boxedAll.Add(Sandboxed(all, programs));
        }
        double plainRate = programs.Count / Median(plain), boxedRate = programs.Count / Median(boxed), allRate = programs.Count / Median(boxedAll);
        Console.WriteLine($"HumanEval canonical programs, {rounds} rounds (median): plain python3 loop {plainRate:F1}/s, sandboxed (1 slot) {boxedRate:F1}/s " +
                          $"-> overhead {plainRate / boxedRate:F2}x (target <= 1.30); sandboxed ({Environment.ProcessorCount} slots) {allRate:F1}/s");

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
            plain_python_per_second = plainRate, sandboxed_per_second = boxedRate, sandboxed_all_slots_per_second = allRate, overhead = plainRate / boxedRate,
            csharp_programs = jobs.Count, csharp_compile_per_second_cached = jobs.Count / cached.Compile, csharp_compile_per_second_uncached = jobs.Count / uncached.Compile,
            csharp_compile_run_per_second_cached = jobs.Count / cached.Total, csharp_compile_run_per_second_uncached = jobs.Count / uncached.Total,
        };
        string json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(json);
        string results = Path.Combine("bench", "results");
        if (Directory.Exists(results)) File.WriteAllText(Path.Combine(results, "code-sandbox.json"), json + "\n");
        return 0;
    }

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
