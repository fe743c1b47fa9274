using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace R1Sharp.Tests.Kernels;

/// <summary>
/// No TorchSharp Scalar in src/ is left for the finalizer while libtorch reads it (<see cref="ScalarTemporaries"/>): a
/// collection on another thread during the call could free it first, the intermittent "Expected false to be true" in
/// Scalar::toFloat of a prefill, a server request or a training step. The sources of src/R1Sharp and src/R1Sharp.Cli
/// are compiled once with the references the tests run with, and every conversion to Scalar and every TorchSharp call
/// that makes one inside is checked.
/// </summary>
public sealed class ScalarTemporariesTests
{
    static readonly string Root = FindRoot();
    static readonly Lazy<List<MetadataReference>> References = new(LoadReferences);
    static readonly Lazy<CSharpCompilation> Library = new(() => Compile("R1Sharp", Sources("R1Sharp"), OutputKind.DynamicallyLinkedLibrary, []));
    static readonly Lazy<CSharpCompilation> Cli = new(() => Compile("r1", Sources("R1Sharp.Cli"), OutputKind.ConsoleApplication, [Library.Value.ToMetadataReference()]));

    static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest);

    // The SDK's implicit usings of a Microsoft.NET.Sdk project (ImplicitUsings in Directory.Build.props)
    const string GlobalUsings = "global using System; global using System.Collections.Generic; global using System.IO; global using System.Linq; " +
        "global using System.Net.Http; global using System.Threading; global using System.Threading.Tasks;";

    [Theory]
    [InlineData("R1Sharp")]
    [InlineData("R1Sharp.Cli")]
    public void Src_holds_every_scalar_it_hands_to_libtorch(string project)
    {
        var compilation = project == "R1Sharp" ? Library.Value : Cli.Value;
        // The semantic model must be whole: an unresolved type or member would hide its calls. Declarations are checked
        // here and every expression in Find (binding the bodies twice would double the time); only the bodies that
        // source generators write ([GeneratedRegex] and the like) are missing.
        var errors = compilation.GetDeclarationDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && d.Id is not ("CS8795" or "CS9248")).Take(10).ToList();
        Assert.True(errors.Count == 0, $"src/{project} does not compile here:\n" + string.Join("\n", errors));
        var findings = ScalarTemporaries.Find(compilation, Root, out var unbound);
        Assert.True(unbound.Count == 0, $"src/{project} does not bind here:\n" + string.Join("\n", unbound.Take(10)));
        Assert.True(findings.Count == 0, $"{findings.Count} Scalars nothing holds while libtorch reads them:\n" + string.Join("\n", findings));
    }

    [Fact]
    public void Temporaries_are_flagged_and_held_scalars_are_not()
    {
        const string source = """
            using TorchSharp;
            using static TorchSharp.torch;
            static class Snippet
            {
                static readonly Scalar Half = 0.5.ToScalar();
                static Scalar Quarter = 0.25;
                static Tensor Bad(Tensor a, Tensor b, double lr)
                {
                    var x = a.mul(0.5);                      // line 9: conversion to a temporary
                    x = x.add(b, lr.ToScalar());             // line 10: ToScalar passed straight on
                    x = a + b;                               // line 11: alpha made inside
                    x.add_(b);                               // line 12: alpha made inside
                    x = x * 2.0;                             // line 13: the operator converts inside
                    var s = lr.ToScalar();                   // line 14: a local without using
                    x = x.clamp(s, s);
                    double v = x.sum().ToDouble();           // line 16: read through a temporary
                    x = torch.arange(10L);                   // line 17: converted and start/step made inside
                    x = x.square();                          // line 18: pow(2) inside
                    x = x.masked_fill(a.gt(b), -1e9);        // line 19
                    x += b;                                  // line 20: a compound +
                    x = new[] { x, b }.Aggregate(torch.add); // line 21: a method group
                    return x.pow(2);                         // line 22
                }
                static Tensor Good(Tensor a, Tensor b, double lr)
                {
                    using var rate = lr.ToScalar();
                    var x = a.mul(Half).add(b, rate).mul(Quarter);
                    x = a - b;
                    x = x * a;
                    using (var two = 2.ToScalar()) x = x.pow(two);
                    return x.sub(b);
                }
                static Tensor Shared(Tensor a)
                {
                    using var half = Half;                   // line 35: disposes a shared Scalar
                    var y = a.mul(half);
                    Quarter.Dispose();                       // line 37
                    return y;
                }
            }
            """;
        var snippet = Compile([CSharpSyntaxTree.ParseText(source, Parse, path: "Snippet.cs")]);
        Assert.Empty(snippet.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        var findings = ScalarTemporaries.Find(snippet, "", out var unbound);
        Assert.Empty(unbound);
        var lines = findings.Select(f => f.Line).Distinct().Order().ToArray();
        Assert.True(lines.SequenceEqual([9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 35, 37]), string.Join("\n", findings));
        Assert.Contains(findings, f => f.Line == 35 && f.What.Contains("disposes the shared Scalar Snippet.Half"));
        Assert.Contains(findings, f => f.Line == 17 && f.What.Contains("converted to a temporary Scalar"));
        Assert.Contains(findings, f => f.Line == 17 && f.What.Contains("arange"));
    }

    [Fact]
    public void The_IL_scan_finds_the_temporaries_TorchSharps_source_shows()
    {
        // Checked by hand against TorchSharp's source: alpha 1 in add(Tensor), the number in the operators, pow(2) in
        // square(), ToScalar().ToDouble() in ToDouble, start 0 and step 1 in arange(stop).
        string[] making = ["TorchSharp.torch.Tensor::add(Tensor)", "TorchSharp.torch.Tensor::add_(Tensor)", "TorchSharp.torch.Tensor::op_Addition(Tensor,Tensor)",
            "TorchSharp.torch.Tensor::op_Multiply(Tensor,Double)", "TorchSharp.torch.Tensor::op_Division(Tensor,Int32)", "TorchSharp.torch.Tensor::op_Subtraction(Scalar,Tensor)",
            "TorchSharp.torch.Tensor::square()", "TorchSharp.TensorExtensionMethods::ToDouble(Tensor)", "TorchSharp.torch::arange(Scalar,Nullable`1,Device,Boolean)",
            "TorchSharp.torch::normal(Double,Double,ReadOnlySpan`1,Nullable`1,Device,Boolean,Generator,String[])"];
        // sub, mul, div, pow, clamp and masked_fill pass the caller's Scalar on; hardshrink holds its own with `using`.
        string[] holding = ["TorchSharp.torch.Tensor::sub(Tensor)", "TorchSharp.torch.Tensor::op_Subtraction(Tensor,Tensor)", "TorchSharp.torch.Tensor::mul(Scalar)",
            "TorchSharp.torch.Tensor::op_Multiply(Tensor,Scalar)", "TorchSharp.torch.Tensor::pow(Scalar)", "TorchSharp.torch.Tensor::clamp(Scalar,Scalar)",
            "TorchSharp.torch.Tensor::masked_fill(Tensor,Scalar)", "TorchSharp.torch.Tensor::add(Tensor,Scalar)", "TorchSharp.torch.nn.functional::hardshrink(Tensor,Double)",
            "TorchSharp.ScalarExtensionMethods::ToScalar(Double)", "TorchSharp.Scalar::op_Implicit(Double)"];
        var known = TorchSharpTemporaries.All;
        Assert.All(making, k => Assert.True(known.ContainsKey(k), k + " not found among:\n" + string.Join("\n", known.Keys.Order())));
        Assert.All(holding, k => Assert.False(known.ContainsKey(k), k + ": " + TorchSharpTemporaries.Why(k)));
        // the keys name methods that exist (a key format that matched nothing would pass the line above vacuously)
        var every = typeof(TorchSharp.Scalar).Assembly.GetTypes().Where(t => t.IsVisible).SelectMany(t => t.GetMethods()).Select(TorchSharpTemporaries.Key).ToHashSet();
        Assert.All(holding, k => Assert.Contains(k, every));
    }

    static SyntaxTree[] Sources(string project) => Directory.EnumerateFiles(Path.Combine(Root, "src", project), "*.cs", SearchOption.AllDirectories)
        .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
        .OrderBy(f => f, StringComparer.Ordinal).Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), Parse, path: f)).ToArray();

    static CSharpCompilation Compile(SyntaxTree[] trees) => Compile("Snippet", trees, OutputKind.DynamicallyLinkedLibrary, []);

    static CSharpCompilation Compile(string name, SyntaxTree[] trees, OutputKind kind, MetadataReference[] more) => CSharpCompilation.Create(name,
        [.. trees, CSharpSyntaxTree.ParseText(GlobalUsings, Parse, path: "GlobalUsings.cs")], [.. References.Value, .. more],
        new CSharpCompilationOptions(kind, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));

    /// <summary>The assemblies this test process runs with (the framework, ASP.NET Core, TorchSharp and the other
    /// packages), less the R1Sharp assemblies whose sources are compiled instead.</summary>
    static List<MetadataReference> LoadReferences() =>
        (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => !Path.GetFileName(p).StartsWith("R1Sharp", StringComparison.Ordinal) && Path.GetFileName(p) != "r1.dll")
            .Select(Reference).OfType<MetadataReference>().ToList();

    static MetadataReference? Reference(string path)
    {
        try { return MetadataReference.CreateFromFile(path); }
        catch (BadImageFormatException) { return null; } // a native library among them
    }

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "R1Sharp.slnx"))) return dir.FullName;
        throw new InvalidOperationException("R1Sharp.slnx not found above " + AppContext.BaseDirectory);
    }
}
