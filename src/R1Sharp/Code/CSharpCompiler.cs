using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace R1Sharp.Code;

/// <summary>A compiled C# program (the assembly's bytes), or the compiler's first errors.</summary>
public sealed record CompiledProgram(byte[]? Assembly, string? Errors);

/// <summary>
/// Compiles C# in process with Roslyn, against the reference set of the running .NET (the shared framework's
/// assemblies), as a console program. DEBUG and TRACE are defined so that Debug.Assert — which MultiPL-E's HumanEval
/// tests are written with, and which a Release build would compile to nothing — is kept; a failed assertion ends the
/// program through Environment.FailFast (exit code 134), which the sandbox reports as a failed test.
/// </summary>
/// <remarks>
/// The test harness of a problem is the same for every candidate solution, so with <see cref="CacheHarness"/> its
/// parsed syntax tree and the compilation holding it (and, through it, the bound reference assemblies, the costly part)
/// are built once; each solution is one <c>AddSyntaxTrees</c> on that compilation. Without the cache every solution
/// parses the harness and binds the references anew. Compiling is bounded by a timeout: the source is untrusted and
/// some inputs (deeply nested generics, huge constant expressions) are slow to bind.
/// </remarks>
public sealed class CSharpCompiler
{
    public const int MaxSourceChars = 1 << 20;
    const int MaxCached = 512;

    public bool CacheHarness { get; }
    public TimeSpan Timeout { get; }

    static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest, DocumentationMode.None, SourceCodeKind.Regular, ["DEBUG", "TRACE"]);
    static readonly CSharpCompilationOptions Options = new(OutputKind.ConsoleApplication, optimizationLevel: OptimizationLevel.Release,
        allowUnsafe: false, concurrentBuild: false, nullableContextOptions: NullableContextOptions.Disable, deterministic: true);

    static readonly Lazy<IReadOnlyList<MetadataReference>> references = new(LoadReferences);
    readonly ConcurrentDictionary<string, CSharpCompilation> harnesses = new();
    readonly ConcurrentDictionary<string, CompiledProgram> programs = new();

    public CSharpCompiler(bool cacheHarness = true, TimeSpan? timeout = null)
    {
        CacheHarness = cacheHarness;
        Timeout = timeout ?? TimeSpan.FromSeconds(30);
    }

    /// <summary>The shared framework's assemblies (System.Private.CoreLib, System.Runtime, System.Linq, …), as the
    /// runtime that will run the program has them.</summary>
    static IReadOnlyList<MetadataReference> LoadReferences()
    {
        string runtimeDir = Path.GetFullPath(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory());
        var paths = (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => Path.GetFullPath(p).StartsWith(runtimeDir, StringComparison.Ordinal))
            .DefaultIfEmpty().Where(p => p is not null).Select(p => p!).ToList();
        if (paths.Count == 0) paths = Directory.GetFiles(runtimeDir, "*.dll").ToList();
        var refs = new List<MetadataReference>();
        foreach (var p in paths.OrderBy(p => p, StringComparer.Ordinal))
        {
            if (Path.GetFileName(p).StartsWith("Microsoft.VisualBasic", StringComparison.Ordinal)) continue;
            try { refs.Add(MetadataReference.CreateFromFile(p)); }
            catch (BadImageFormatException) { } // native images among the runtime files
        }
        return refs;
    }

    /// <summary>Loads the references now, so the first compilation's time is not the reference load's.</summary>
    public static void Warm() => _ = references.Value;

    /// <summary>The solution and the fixed harness (null: the solution is the whole program) compiled together.</summary>
    public CompiledProgram Compile(string solution, string? harness, CancellationToken cancel = default)
    {
        if (solution.Length + (harness?.Length ?? 0) > MaxSourceChars)
            return new CompiledProgram(null, $"source too long ({solution.Length + (harness?.Length ?? 0):N0} characters; at most {MaxSourceChars:N0})");
        string key = Hash(harness ?? "") + Hash(solution);
        if (CacheHarness && programs.TryGetValue(key, out var known)) return known;

        var baseCompilation = CacheHarness ? harnesses.GetOrAdd(Hash(harness ?? ""), _ => Base(harness)) : Base(harness);
        var tree = CSharpSyntaxTree.ParseText(solution, Parse, path: "Solution.cs", encoding: Encoding.UTF8, cancellationToken: cancel);
        var compilation = baseCompilation.AddSyntaxTrees(tree);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(Timeout);
        CompiledProgram result;
        try
        {
            using var pe = new MemoryStream();
            var emitted = compilation.Emit(pe, cancellationToken: timeout.Token);
            result = emitted.Success ? new CompiledProgram(pe.ToArray(), null)
                : new CompiledProgram(null, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(5).Select(d => d.ToString())));
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            result = new CompiledProgram(null, $"compilation took longer than {Timeout.TotalSeconds:0.#} s");
        }
        if (CacheHarness)
        {
            if (programs.Count >= MaxCached) programs.Clear(); // a run of k samples reuses recent programs; old ones can go
            programs[key] = result;
        }
        if (harnesses.Count > MaxCached) harnesses.Clear();
        return result;
    }

    static CSharpCompilation Base(string? harness)
    {
        var trees = harness is null ? [] : new[] { CSharpSyntaxTree.ParseText(harness, Parse, path: "Harness.cs", encoding: Encoding.UTF8) };
        return CSharpCompilation.Create("Program", trees, references.Value, Options);
    }

    static string Hash(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..32];

    /// <summary>The runtimeconfig.json that lets `dotnet Program.dll` start on the running .NET's major version.</summary>
    public static string RuntimeConfig()
    {
        var v = Environment.Version;
        string version = $"{v.Major}.{v.Minor}";
        return "{\"runtimeOptions\":{\"tfm\":\"net" + version + "\",\"framework\":{\"name\":\"Microsoft.NETCore.App\",\"version\":\"" + version +
            ".0\"},\"configProperties\":{\"System.Globalization.Invariant\":true,\"System.GC.Concurrent\":false,\"System.GC.Server\":false}}}";
    }
}
